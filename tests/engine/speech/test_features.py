"""Log-mel features and resampling against references computed differently (direct DFT, explicit formulas)."""

from __future__ import annotations

import numpy as np
import pytest
from livepuppet.engine.speech.features import (
    F_MAX,
    F_MIN,
    HOP,
    LOG_FLOOR,
    N_FFT,
    N_MELS,
    SAMPLE_RATE,
    WIN,
    LogMelStream,
    log_mel,
    resample,
)


def _reference_log_mel(pcm: np.ndarray) -> np.ndarray:
    """Slow textbook version: explicit frame loop, DFT by matrix product, filters from the mel formula per bin."""
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    inv = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)  # noqa: E731
    points = [inv(mel(F_MIN) + k * (mel(F_MAX) - mel(F_MIN)) / (N_MELS + 1)) for k in range(N_MELS + 2)]
    freqs = np.arange(N_FFT // 2 + 1) * SAMPLE_RATE / N_FFT
    bank = np.zeros((N_MELS, len(freqs)))
    for m in range(N_MELS):
        lo, mid, hi = points[m], points[m + 1], points[m + 2]
        for k, f in enumerate(freqs):
            if lo < f <= mid:
                bank[m, k] = (f - lo) / (mid - lo)
            elif mid < f < hi:
                bank[m, k] = (hi - f) / (hi - mid)
    n = np.arange(N_FFT)
    dft = np.exp(-2j * np.pi * np.outer(np.arange(N_FFT // 2 + 1), n) / N_FFT)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)
    padded = np.concatenate([np.zeros(WIN - HOP), pcm.astype(np.float64)])
    out = []
    for i in range(len(pcm) // HOP):
        frame = np.zeros(N_FFT)
        frame[:WIN] = padded[i * HOP : i * HOP + WIN] * hann  # the window ends at sample (i + 1) * HOP
        power = np.abs(dft @ frame) ** 2
        out.append(np.log(np.maximum(bank @ power, LOG_FLOOR)))
    return np.array(out)


def test_log_mel_matches_textbook_reference() -> None:
    rng = np.random.default_rng(0)
    pcm = (0.3 * rng.standard_normal(HOP * 12 + 77)).astype(np.float32)
    ours = log_mel(pcm)
    ref = _reference_log_mel(pcm)
    assert ours.shape == (12, N_MELS)
    np.testing.assert_allclose(ours, ref, atol=2e-3)


@pytest.mark.parametrize("freq", [300.0, 1_000.0, 3_000.0, 6_000.0])
def test_pure_tone_lands_in_its_mel_band(freq: float) -> None:
    t = np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
    feats = log_mel((0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32))
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    centres = mel(F_MIN) + (np.arange(N_MELS) + 1) * (mel(F_MAX) - mel(F_MIN)) / (N_MELS + 1)
    expected = int(np.argmin(np.abs(centres - mel(freq))))
    peak = np.bincount(feats[5:].argmax(axis=1)).argmax()
    assert abs(int(peak) - expected) <= 1


def test_silence_is_floor_and_framing_is_causal() -> None:
    assert np.all(log_mel(np.zeros(HOP * 5, np.float32)) == np.float32(np.log(LOG_FLOOR)))
    rng = np.random.default_rng(1)
    a = (0.1 * rng.standard_normal(HOP * 20)).astype(np.float32)
    b = a.copy()
    b[HOP * 10 :] = 0.9  # change only the future of frame 9
    np.testing.assert_array_equal(log_mel(a)[:10], log_mel(b)[:10])
    assert not np.allclose(log_mel(a)[10], log_mel(b)[10])


@pytest.mark.parametrize("chunk", [1, 7, 160, 333, 5_000])
def test_streaming_features_equal_offline(chunk: int) -> None:
    rng = np.random.default_rng(2)
    pcm = (0.2 * rng.standard_normal(HOP * 30 + 55)).astype(np.float32)
    stream = LogMelStream()
    parts = [stream.push(pcm[i : i + chunk]) for i in range(0, len(pcm), chunk)]
    np.testing.assert_allclose(np.concatenate(parts), log_mel(pcm), atol=1e-5)


@pytest.mark.parametrize("rate", [8_000, 22_050, 24_000, 48_000])
def test_resample_keeps_a_tone_frequency(rate: int) -> None:
    freq = 1_234.0 if rate > 8_000 else 987.0
    seconds = 1.0
    t = np.arange(int(rate * seconds)) / rate
    out = resample((0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate, SAMPLE_RATE)
    assert out.dtype == np.float32
    assert abs(len(out) - SAMPLE_RATE * seconds) <= 1
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / len(out) - freq) <= 1.5
    assert 0.45 < float(np.abs(out[1000:-1000]).max()) < 0.55  # amplitude kept


def test_resample_rejects_bad_rates() -> None:
    with pytest.raises(ValueError, match="positive"):
        resample(np.zeros(10, np.float32), 0, SAMPLE_RATE)
