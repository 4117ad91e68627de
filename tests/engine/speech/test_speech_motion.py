"""Speech-driven motion: the mouth follows the model's controls, life goes on (blinks, sway, gaze),
nods and brows follow prosody, emotions blend, and it is reproducible."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from livepuppet.engine.config import SpeechConfig
from livepuppet.engine.speech.speech_motion import MOUTH_OPEN_MAX, SpeechMotion
from livepuppet.engine.speech.timeline import SpeechSample

FPS = 25


def run(cfg: SpeechConfig, seconds: float, speech: SpeechSample | None = None):  # noqa: ANN201
    gen = SpeechMotion(cfg)
    return [gen.motion(i / FPS, speech, i) for i in range(int(seconds * FPS))]


def test_mouth_follows_the_model_controls() -> None:
    gen = SpeechMotion(SpeechConfig())
    wide = gen.motion(0.0, SpeechSample(jaw_open=1.0, voiced=1.0)).expression
    assert wide.mouth_open == pytest.approx(MOUTH_OPEN_MAX) and wide.jaw > 0.1
    closed = gen.motion(0.04, SpeechSample(jaw_open=0.6, lip_close=1.0, voiced=1.0)).expression
    assert closed.mouth_open == pytest.approx(0.0, abs=1e-6)  # p/b/m: lips pressed together
    spread = gen.motion(0.08, SpeechSample(jaw_open=0.3, lip_width=1.0, voiced=1.0)).expression
    rounded = gen.motion(0.12, SpeechSample(jaw_open=0.3, lip_round=1.0, lip_width=-0.5, voiced=1.0)).expression
    assert spread.mouth_width > 0.08 and rounded.mouth_round > 0.5 and rounded.mouth_width < 0
    assert gen.motion(0.16, None).expression.mouth_open == 0.0


def test_blinks_at_a_natural_rate() -> None:
    motions = run(SpeechConfig(blink_rate_per_min=20.0), 120.0)
    eyes = np.array([m.expression.eye_open_l for m in motions])
    starts = np.flatnonzero((eyes[1:] < 0.5) & (eyes[:-1] >= 0.5))
    assert 25 <= len(starts) <= 55, len(starts)  # ≈ 40 expected in 2 minutes
    assert np.min(np.diff(starts)) >= FPS * 0.9  # never twice within a second
    assert eyes.min() < 0.2  # they really close
    none = np.array([m.expression.eye_open_l for m in run(SpeechConfig(blink_rate_per_min=0.0), 20.0)])
    assert none.min() == 1.0


def test_idle_sway_and_gaze_are_alive_and_bounded() -> None:
    motions = run(SpeechConfig(sway_deg=2.0), 30.0)
    yaw = np.array([m.head.yaw for m in motions])
    gaze = np.array([m.expression.gaze_x for m in motions])
    assert 0.5 < np.ptp(yaw) < 8.0 and np.abs(np.diff(yaw)).max() < 0.5  # moves, smoothly, a few degrees
    assert np.ptp(gaze) > 0.05 and np.abs(gaze).max() <= 0.6
    still = run(SpeechConfig(sway_deg=0.0, gaze_shifts=False), 5.0)
    assert all(abs(m.head.yaw) < 1e-9 and m.expression.gaze_x == 0 for m in still)


def test_stress_nods_and_accents_raise_brows() -> None:
    cfg = SpeechConfig(sway_deg=0.0)
    calm = SpeechMotion(cfg).motion(1.0, SpeechSample(voiced=1.0))
    nod = SpeechMotion(cfg).motion(1.0, SpeechSample(voiced=1.0, stress=1.0))
    brow = SpeechMotion(cfg).motion(1.0, SpeechSample(voiced=1.0, accent=1.0))
    assert nod.head.pitch - calm.head.pitch > 2.0
    assert brow.expression.brow_raise - calm.expression.brow_raise > 0.04
    off = SpeechMotion(replace(cfg, nod_gain=0.0, brow_gain=0.0))
    lively = off.motion(1.0, SpeechSample(voiced=1.0, stress=1.0, accent=1.0))
    assert lively.head.pitch == pytest.approx(calm.head.pitch)


def test_emotions_blend_in_and_mix_with_speech() -> None:
    gen = SpeechMotion(SpeechConfig(emotion="neutral"))
    assert gen.motion(0.0).expression.smile == 0.0
    gen.set_emotion("happy", 1.0)
    smiles = [gen.motion(i / FPS, SpeechSample(jaw_open=0.5, voiced=1.0)).expression.smile for i in range(1, 40)]
    assert smiles[0] < smiles[-1] and smiles[-1] > 0.08  # eased in, not a jump
    talking = gen.motion(2.0, SpeechSample(jaw_open=0.8, voiced=1.0)).expression
    assert talking.smile > 0.08 and talking.mouth_open > 0.15  # smiling while talking
    gen.set_emotion("surprised", 1.0)
    late = [gen.motion(2.0 + i / FPS).expression for i in range(1, 50)][-1]
    assert late.brow_raise > 0.1 and late.eye_open_l > 1.1
    with pytest.raises(ValueError, match="unknown emotion"):
        gen.set_emotion("bored", 1.0)


def test_reproducible_with_a_seed() -> None:
    a = [m.head.yaw for m in run(SpeechConfig(seed=3), 5.0)]
    b = [m.head.yaw for m in run(SpeechConfig(seed=3), 5.0)]
    c = [m.head.yaw for m in run(SpeechConfig(seed=4), 5.0)]
    assert a == b and a != c
