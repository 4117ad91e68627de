"""Streaming DSP of the audio path: resampling (chunking-independent, frequency-preserving) and prosody
(loudness, pitch)."""

from __future__ import annotations

import numpy as np
import pytest
from livepuppet.engine.speech.prosody import ProsodyStream
from livepuppet.engine.speech.resampler import StreamingResampler


def tone(rate: int, freq: float, seconds: float, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)).astype(np.float32)


def dominant(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * rate / len(x))


@pytest.mark.parametrize("rate_in, rate_out", [(48000, 16000), (44100, 16000), (24000, 16000), (8000, 16000),
                                               (22050, 16000), (16000, 48000), (48000, 48000)])
def test_resampler_keeps_frequency_and_level_whatever_the_chunks(rate_in: int, rate_out: int) -> None:
    x = tone(rate_in, 440.0, 1.0)
    whole = StreamingResampler(rate_in, rate_out).push(x)
    r = StreamingResampler(rate_in, rate_out)
    rng = np.random.default_rng(1)
    parts, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, 2500))
        parts.append(r.push(x[i:i + n]))
        i += n
    chunked = np.concatenate(parts)
    assert abs(len(whole) - rate_out) <= 2 and np.array_equal(whole, chunked)
    body = whole[rate_out // 10:-rate_out // 10]
    assert dominant(body, rate_out) == pytest.approx(440.0, abs=3.0)
    assert np.std(body) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


def test_resampler_removes_what_the_new_rate_cannot_hold() -> None:
    x = tone(48000, 12000.0, 0.5)  # above 8 kHz, the Nyquist frequency at 16 kHz
    y = StreamingResampler(48000, 16000).push(x)
    assert np.std(y[800:-800]) < 0.01  # filtered out, not aliased to 4 kHz


def test_prosody_finds_loudness_and_pitch() -> None:
    rate = 16000
    voice = np.concatenate([np.zeros(rate // 4, np.float32), tone(rate, 180.0, 0.5, 0.3) + tone(rate, 360.0, 0.5, 0.1),
                            np.zeros(rate // 4, np.float32)])
    stream = ProsodyStream()
    frames = stream.push(voice[:777]) + stream.push(voice[777:])
    assert len(frames) == len(voice) // 160
    voiced = [f for f in frames if 0.3 < f.t < 0.7]
    silent = [f for f in frames if f.t < 0.2 or f.t > 0.85]
    assert all(abs(f.f0 - 180.0) < 6 for f in voiced), [f.f0 for f in voiced]
    assert all(f.f0 == 0 and f.db < -60 for f in silent)
    assert min(f.db for f in voiced) > -15
