"""Waveform augmentation for training: gain, additive noise, telephone band-limiting and resampling round trips."""

from __future__ import annotations

import numpy as np
from livepuppet.engine.speech.features import resample
from scipy.signal import butter, sosfilt

_TELEPHONE = butter(4, [300.0, 3400.0], btype="bandpass", fs=16_000, output="sos")


def add_noise(audio: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White or pinkish (1-pole low-passed) noise at ``snr_db`` below the speech RMS."""
    rms = float(np.sqrt(np.mean(audio**2))) + 1e-8
    noise = rng.standard_normal(len(audio)).astype(np.float32)
    if rng.random() < 0.5:  # pink-ish: integrate a little
        noise = sosfilt(butter(1, 1_000.0, fs=16_000, output="sos"), noise).astype(np.float32)
    noise *= rms * 10 ** (-snr_db / 20.0) / (float(np.sqrt(np.mean(noise**2))) + 1e-8)
    return audio + noise


def telephone(audio: np.ndarray) -> np.ndarray:
    """8 kHz telephone channel: down to 8 kHz and back, then 300–3400 Hz band-pass."""
    narrow = resample(resample(audio, 16_000, 8_000), 8_000, 16_000)[: len(audio)]
    return sosfilt(_TELEPHONE, narrow).astype(np.float32)


def augment(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random augmentation of ``(n,) f32 [-1,1] 16 kHz`` (same length out)."""
    x = audio.astype(np.float32, copy=True)
    if rng.random() < 0.3:
        rate = int(rng.choice([11_025, 12_000, 22_050, 24_000, 44_100]))
        x = resample(resample(x, 16_000, rate), rate, 16_000)[: len(audio)]
        x = np.pad(x, (0, len(audio) - len(x)))
    if rng.random() < 0.3:
        x = telephone(x)
    if rng.random() < 0.6:
        x = add_noise(x, float(rng.uniform(5.0, 40.0)), rng)
    peak = float(np.abs(x).max()) + 1e-8
    x *= float(10 ** rng.uniform(-1.6, -0.05)) / peak  # peak between −32 dBFS and −0.5 dBFS
    return np.clip(x, -1.0, 1.0).astype(np.float32)
