"""Per-channel motion filters: the head is smoothed most, mouth and lids least; lead and Kalman cut lag."""

from __future__ import annotations

import numpy as np
from livepuppet.engine.config import RetargetConfig
from livepuppet.engine.motion.kalman import ConstantVelocityKalman
from livepuppet.engine.motion.motion_filter import MotionFilter, unfiltered
from livepuppet.engine.motion.one_euro import OneEuroFilter
from livepuppet.engine.motion.retarget import Retargeter
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.types import Expression, HeadMotion, Motion

FPS = 30


def ramp_lag_s(f: OneEuroFilter | ConstantVelocityKalman, speed: float = 1.0) -> float:
    """How far behind a ramp the filter's output is after 2 s, in seconds."""
    for i in range(2 * FPS + 1):
        out = f(np.array([speed * i / FPS]), i / FPS)[0]
    return (speed * 2.0 - out) / speed


def test_lead_cancels_part_of_the_one_euro_lag() -> None:
    plain = ramp_lag_s(OneEuroFilter(2.0, 0.0, 4.0))
    led = ramp_lag_s(OneEuroFilter(2.0, 0.0, 4.0, lead=1.0))
    assert plain > 0.07  # a first-order low-pass at 2 Hz lags a ramp by tau = 80 ms
    assert abs(led) < 0.2 * plain


def test_constant_velocity_kalman_has_no_ramp_lag_and_smooths_noise() -> None:
    assert abs(ramp_lag_s(ConstantVelocityKalman(accel=1.0, noise=0.05))) < 0.01
    rng = np.random.default_rng(0)
    k = ConstantVelocityKalman(accel=0.1, noise=0.05)
    noisy = 0.05 * rng.standard_normal(300)
    out = np.array([k(np.array([v]), i / FPS)[0] for i, v in enumerate(noisy)])
    assert np.std(out[60:]) < 0.3 * np.std(noisy[60:])


def test_head_is_smoothed_more_than_the_mouth() -> None:
    rng = np.random.default_rng(1)
    f = MotionFilter(RetargetConfig())
    yaws, mouths = [], []
    for i in range(150):
        head, e = f(HeadMotion(yaw=float(rng.normal(0, 1.0))), Expression(mouth_open=float(rng.normal(0, 0.01))),
                    i / FPS)
        yaws.append(head.yaw)
        mouths.append(e.mouth_open)
    head_ratio = np.std(yaws[30:]) / 1.0
    mouth_ratio = np.std(mouths[30:]) / 0.01
    assert head_ratio < 0.4 < mouth_ratio, (head_ratio, mouth_ratio)


def test_unfiltered_passes_motion_through(prepared: PreparedSource) -> None:
    rt = Retargeter(prepared, unfiltered(RetargetConfig()))
    rt.retarget(Motion(pts=0, seq=0))
    target = rt.retarget(Motion(pts=int(1e9 / FPS), seq=1, head=HeadMotion(yaw=10.0),
                                expression=Expression(mouth_open=0.2)))
    assert abs(target.head.yaw - 10.0) < 0.6 and abs(target.expression.mouth_open - 0.2) < 0.012


def test_landmark_deltas_are_bounded(prepared: PreparedSource) -> None:
    cfg = RetargetConfig(mode="landmarks", max_delta=0.3)
    wild = np.zeros((478, 3), np.float32)
    wild[152] = (5.0, 5.0, 0.0)  # a garbage track: the chin 7 inter-ocular units away
    target = Retargeter(prepared, cfg).retarget(Motion(pts=0, seq=0, deltas=wild))
    moved = np.linalg.norm(target.landmarks[152, :2] - prepared.landmarks[152, :2]) / prepared.pose.scale
    assert 0.2 < moved <= 0.3 + 1e-3
