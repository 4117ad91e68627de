"""The speech timeline: sampling between hops, onsets and accents, and long streams that stay bounded."""

from __future__ import annotations

import numpy as np
import pytest
from livepuppet.engine.speech.mouth_model import MouthFrame
from livepuppet.engine.speech.prosody import ProsodyFrame
from livepuppet.engine.speech.timeline import SpeechTimeline


def mouth(i: int, jaw: float, viseme: int = 10) -> MouthFrame:
    return MouthFrame(t=(i + 0.5) * 0.01, viseme=viseme, probs=np.zeros(15, np.float32), jaw_open=jaw,
                      lip_width=0.0, lip_round=0.0, lip_close=0.0, voiced=1.0)


def test_samples_interpolate_between_hops_and_hold_at_the_ends() -> None:
    timeline = SpeechTimeline()
    timeline.add_mouth([mouth(0, 0.0), mouth(1, 1.0)])
    assert timeline.sample(0.005).jaw_open == pytest.approx(0.0)
    assert timeline.sample(0.010).jaw_open == pytest.approx(0.5)  # half way between the hop centres
    assert timeline.sample(5.0).jaw_open == pytest.approx(1.0)  # beyond the newest frame: it holds
    assert timeline.mouth_until == pytest.approx(0.02)
    timeline.clear()
    assert timeline.sample(0.01).jaw_open == 0.0 and timeline.mouth_until == 0.0


def test_loudness_onsets_are_stress_and_high_pitch_is_accent() -> None:
    timeline = SpeechTimeline()
    quiet = [ProsodyFrame(t=(i + 0.5) * 0.01, db=-40.0, f0=150.0) for i in range(50)]
    loud = [ProsodyFrame(t=(i + 50.5) * 0.01, db=-10.0, f0=260.0) for i in range(10)]
    timeline.add_prosody(quiet)
    timeline.add_prosody(loud)
    timeline.add_mouth([mouth(i, 0.5) for i in range(60)])
    assert timeline.sample(0.3).stress == 0.0 and timeline.sample(0.3).accent == 0.0
    onset = timeline.sample(0.52)
    assert onset.stress == pytest.approx(1.0) and onset.accent > 0.5  # +30 dB and +0.8 octave


def test_a_long_stream_keeps_its_last_minutes_with_correct_times() -> None:
    timeline = SpeechTimeline(capacity_s=2.0)
    for chunk in range(100):  # 10 s of frames in 100 ms chunks
        timeline.add_mouth([mouth(chunk * 10 + k, (chunk * 10 + k) / 1000) for k in range(10)])
        timeline.add_prosody([ProsodyFrame(t=(chunk * 10 + k + 0.5) * 0.01, db=-20.0, f0=0.0) for k in range(10)])
    assert timeline.mouth_until == pytest.approx(10.0)
    assert timeline.sample(9.505).jaw_open == pytest.approx(0.950, abs=1e-4)  # still the right frame
    assert timeline.sample(1.0).jaw_open == pytest.approx(0.8, abs=1e-4)  # older than 2 s: the oldest kept


@pytest.mark.parametrize("voiced", [9, 10, 11, 12, 101])
def test_accent_is_pitch_over_the_voiced_median(voiced: int) -> None:
    """The accent measures each frame's pitch against the median of the voiced pitch heard so far (the mean
    of the middle two for an even count; no accent before ten voiced frames); unvoiced frames count in
    neither."""
    rng = np.random.default_rng(voiced)
    f0 = rng.uniform(90.0, 300.0, voiced).astype(np.float32)
    pitches = np.concatenate([f0, np.zeros(7, np.float32)])  # unvoiced frames among them
    rng.shuffle(pitches)
    timeline = SpeechTimeline()
    timeline.add_prosody([ProsodyFrame(t=(i + 0.5) * 0.01, db=-20.0, f0=float(p)) for i, p in enumerate(pitches)])
    timeline.add_mouth([mouth(i, 0.5) for i in range(len(pitches))])
    median = float(np.median(f0))
    for i, p in enumerate(pitches):
        want = 0.0 if voiced < 10 or p == 0 else float(np.clip(np.log2(p / median) / 0.4, 0.0, 1.0))
        assert timeline.sample(i * 0.01).accent == pytest.approx(want, abs=1e-6), i  # (prosody: nearest hop)
