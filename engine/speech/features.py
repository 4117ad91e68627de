"""Log-mel features and resampling for the audio→mouth model: NumPy/SciPy only (no torch, no librosa at run time).

Framing is causal: feature frame ``i`` is the 25 ms window that *ends* at sample ``(i + 1) * HOP``, with zeros
before the stream's start, so a frame never needs audio after its own hop.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd

import numpy as np
from scipy.signal import resample_poly

SAMPLE_RATE = 16_000
HOP = 160  # samples per 10 ms hop at 16 kHz
WIN = 400  # 25 ms analysis window
N_FFT = 512
N_MELS = 40
F_MIN = 60.0
F_MAX = 7_600.0
LOG_FLOOR = 1e-10  # power floor before the log; an all-zero window gives log(LOG_FLOOR)
SILENCE_VALUE = float(np.log(LOG_FLOOR))


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: 2595 · log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(
    n_mels: int = N_MELS, n_fft: int = N_FFT, rate: int = SAMPLE_RATE, f_min: float = F_MIN, f_max: float = F_MAX
) -> np.ndarray:
    """Triangular HTK mel filters: ``(n_mels, n_fft // 2 + 1) f32``, peak 1 at each band centre."""
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    bins_hz = np.arange(n_fft // 2 + 1) * rate / n_fft
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bins_hz[None, :] - lower) / (centre - lower)
    falling = (upper - bins_hz[None, :]) / (upper - centre)
    return np.clip(np.minimum(rising, falling), 0.0, None).astype(np.float32)


@dataclass(frozen=True, slots=True)
class MelSpec:
    """Precomputed constants of the feature extractor (window and filterbank)."""

    window: np.ndarray  # (WIN,) f32 periodic Hann
    filters: np.ndarray  # (N_MELS, N_FFT // 2 + 1) f32

    @classmethod
    def default(cls) -> MelSpec:
        window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(WIN) / WIN)).astype(np.float32)
        return cls(window=window, filters=mel_filterbank())


_SPEC = MelSpec.default()  # immutable constants, computed once at import (no I/O)


def log_mel_frames(windows: np.ndarray, spec: MelSpec = _SPEC) -> np.ndarray:
    """Log mel power of framed audio: ``(N, WIN) f32 [-1,1]`` → ``(N, N_MELS) f32`` (natural log of power)."""
    spectrum = np.fft.rfft(windows * spec.window, n=N_FFT, axis=-1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    return np.log(np.maximum(power @ spec.filters.T, np.float32(LOG_FLOOR)))  # f32 throughout


def hop_windows(samples: np.ndarray, count: int, width: int, hop: int = HOP) -> np.ndarray:
    """``count`` windows of ``width`` samples, one every ``hop``, from the start of contiguous ``samples``: a
    read-only strided view (``sliding_window_view``'s checks cost more than a 20 ms chunk's FFT)."""
    step = samples.itemsize
    return np.lib.stride_tricks.as_strided(samples, (count, width), (hop * step, step), writeable=False)


def frame_count(n_samples: int) -> int:
    """Complete hops in ``n_samples``: the number of feature frames available."""
    return n_samples // HOP


def log_mel(pcm: np.ndarray, spec: MelSpec = _SPEC) -> np.ndarray:
    """Offline log-mel of a whole clip: ``(n,) f32 [-1,1] 16 kHz`` → ``(n // HOP, N_MELS) f32`` (causal framing)."""
    count = frame_count(len(pcm))
    padded = np.concatenate([np.zeros(WIN - HOP, np.float32), np.asarray(pcm, np.float32)])
    if count == 0:
        return np.zeros((0, N_MELS), np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(padded, WIN)[: count * HOP : HOP]
    return log_mel_frames(windows, spec)


class LogMelStream:
    """Incremental :func:`log_mel`: push any number of samples, get the frames whose hop completed."""

    def __init__(self, spec: MelSpec = _SPEC) -> None:
        self._spec = spec
        self._buf = np.zeros(WIN - HOP, np.float32)  # the last WIN - HOP samples plus any partial hop

    def reset(self) -> None:
        """Forget all audio: the next sample is the stream's first."""
        self._buf = np.zeros(WIN - HOP, np.float32)

    def push(self, pcm: np.ndarray) -> np.ndarray:
        """``(n,) f32 [-1,1]`` → ``(k, N_MELS) f32``, the frames completed by these samples (k may be 0)."""
        buf = np.concatenate([self._buf, pcm.astype(np.float32, copy=False)])
        count = (len(buf) - (WIN - HOP)) // HOP
        if count == 0:
            self._buf = buf
            return np.zeros((0, N_MELS), np.float32)
        out = log_mel_frames(hop_windows(buf, count, WIN), self._spec)
        self._buf = buf[count * HOP :].copy()
        return out


def resample(pcm: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling of mono audio: ``(n,) f32`` at ``rate_in`` → ``(≈ n·rate_out/rate_in,) f32``."""
    if rate_in <= 0 or rate_out <= 0:
        raise ValueError(f"sample rates must be positive, got {rate_in} → {rate_out}")
    x = np.asarray(pcm, dtype=np.float32)
    if rate_in == rate_out:
        return x.copy()
    g = gcd(int(rate_in), int(rate_out))
    return resample_poly(x, rate_out // g, rate_in // g).astype(np.float32)
