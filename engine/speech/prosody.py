"""Speech prosody per 10 ms: loudness and pitch, streaming, NumPy only. Drives nods (stress) and brow
raises (pitch accents) of the talking head."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from livepuppet.engine.speech.features import hop_windows

SAMPLE_RATE = 16_000
HOP = 160  # 10 ms
WINDOW = 640  # 40 ms: two periods of a 50 Hz voice
F0_MIN, F0_MAX = 60.0, 400.0
VOICING_THRESHOLD = 0.45  # normalized autocorrelation peak needed to call a frame voiced
SILENCE_DB = -50.0
_TAPER = np.hanning(WINDOW)


@dataclass(frozen=True, slots=True)
class ProsodyFrame:
    """One 10 ms hop: ``t`` (s, hop centre), loudness ``db`` (dBFS RMS) and ``f0`` (Hz, 0 when unvoiced)."""

    t: float
    db: float
    f0: float


_LO, _HI = int(SAMPLE_RATE / F0_MAX), int(SAMPLE_RATE / F0_MIN)  # the lags a voice's period can take
_N_FFT = 1024  # ≥ WINDOW + _HI: the autocorrelation at every lag searched is free of wrap-around


def analyse(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``windows (n, WINDOW) f32`` → (dB, f0) per window; f0 by the normalized autocorrelation peak. Few
    NumPy calls: a 20 ms chunk has two windows, where each call's overhead outweighs its arithmetic."""
    x = windows - np.add.reduce(windows, axis=1, keepdims=True) / np.float32(WINDOW)
    db = 20 * np.log10(np.sqrt(np.add.reduce(x * x, axis=1) / np.float32(WINDOW) + 1e-12))
    spec = np.fft.rfft(x * _TAPER, n=_N_FFT, axis=1)
    ac = np.fft.irfft(spec.real ** 2 + spec.imag ** 2, n=_N_FFT, axis=1)
    lags = ac[:, _LO:_HI] / np.maximum(ac[:, :1], 1e-12)
    best = np.argmax(lags, axis=1)
    peak = lags.max(axis=1)
    f0 = np.where((peak > VOICING_THRESHOLD) & (db > SILENCE_DB), SAMPLE_RATE / (best + _LO), 0.0)
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
        db, f0 = analyse(hop_windows(self._buffer, n, WINDOW, HOP))
        self._buffer = self._buffer[n * HOP:]
        first = self._frames
        self._frames += n
        return [ProsodyFrame(t=(first + i + 0.5) * HOP / SAMPLE_RATE, db=d, f0=f)
                for i, (d, f) in enumerate(zip(db.tolist(), f0.tolist(), strict=True))]
