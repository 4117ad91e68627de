"""Speech prosody per 10 ms: loudness and pitch, streaming, NumPy only. Drives nods (stress) and brow
raises (pitch accents) of the talking head."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16_000
HOP = 160  # 10 ms
WINDOW = 640  # 40 ms: two periods of a 50 Hz voice
F0_MIN, F0_MAX = 60.0, 400.0
VOICING_THRESHOLD = 0.45  # normalized autocorrelation peak needed to call a frame voiced
SILENCE_DB = -50.0
_TAPER = np.hanning(WINDOW)
_LAGS = np.arange(WINDOW)


@dataclass(frozen=True, slots=True)
class ProsodyFrame:
    """One 10 ms hop: ``t`` (s, hop centre), loudness ``db`` (dBFS RMS) and ``f0`` (Hz, 0 when unvoiced)."""

    t: float
    db: float
    f0: float


def analyse(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``windows (n, WINDOW) f32`` → (dB, f0) per window; f0 by the normalized autocorrelation peak."""
    x = windows - windows.mean(axis=1, keepdims=True)
    rms = np.sqrt(np.mean(x * x, axis=1) + 1e-12)
    db = 20 * np.log10(rms)
    spec = np.fft.rfft(x * _TAPER, n=2 * WINDOW, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :WINDOW]
    lo, hi = int(SAMPLE_RATE / F0_MAX), int(SAMPLE_RATE / F0_MIN)
    lags = ac[:, lo:hi] / np.maximum(ac[:, :1], 1e-12)
    best = np.argmax(lags, axis=1)
    peak = lags[np.arange(len(best)), best]
    f0 = np.where((peak > VOICING_THRESHOLD) & (db > SILENCE_DB), SAMPLE_RATE / (best + lo), 0.0)
    return db.astype(np.float32), f0.astype(np.float32)


class ProsodyStream:
    """PCM (16 kHz mono f32) in any chunks → one :class:`ProsodyFrame` per completed hop."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._buffer = np.zeros(WINDOW - HOP, np.float32)  # silence before the start
        self._frames = 0

    def push(self, pcm: np.ndarray) -> list[ProsodyFrame]:
        self._buffer = np.concatenate([self._buffer, np.asarray(pcm, np.float32)])
        n = (len(self._buffer) - WINDOW) // HOP + 1
        if n <= 0:
            return []
        idx = _LAGS[None, :] + HOP * np.arange(n)[:, None]
        db, f0 = analyse(self._buffer[idx])
        self._buffer = self._buffer[n * HOP:]
        out = [ProsodyFrame(t=(self._frames + i + 0.5) * HOP / SAMPLE_RATE, db=float(db[i]), f0=float(f0[i]))
               for i in range(n)]
        self._frames += n
        return out
