"""Audio/video sync of a received talking-head stream: the lag that best aligns the loudness of the
sound with the opening of the mouth, both taken at their arrival times on the receiver."""

from __future__ import annotations

import numpy as np

GRID_S = 0.005


def envelope_lag(audio_t: np.ndarray, audio_level: np.ndarray, video_t: np.ndarray, mouth_open: np.ndarray,
                 max_lag_s: float = 0.3) -> tuple[float, float]:
    """(lag s, correlation): how much later the mouth moves than the sound (negative: earlier). Times in
    seconds on one clock; both signals are resampled to a 5 ms grid and z-scored."""
    start, end = max(audio_t[0], video_t[0]), min(audio_t[-1], video_t[-1])
    if end - start < 4 * max_lag_s:
        raise ValueError("streams overlap too little to measure their sync")
    grid = np.arange(start, end, GRID_S)
    a = np.interp(grid, audio_t, audio_level)
    v = np.interp(grid, video_t, mouth_open)
    a = (a - a.mean()) / (a.std() + 1e-12)
    v = (v - v.mean()) / (v.std() + 1e-12)
    steps = int(max_lag_s / GRID_S)
    best, best_r = 0, -np.inf
    for k in range(-steps, steps + 1):  # video at t + k·grid matches audio at t
        if k >= 0:
            r = float(np.mean(a[:len(a) - k] * v[k:]))
        else:
            r = float(np.mean(a[-k:] * v[:len(v) + k]))
        if r > best_r:
            best, best_r = k, r
    return best * GRID_S, best_r
