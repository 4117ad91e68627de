from __future__ import annotations

import numpy as np
from livepuppet.engine.config import EngineConfig, RetargetConfig
from livepuppet.engine.motion.retarget import Retargeter
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.types import Expression, HeadMotion, Motion


def at(t: float, seq: int, **kwargs: object) -> Motion:
    return Motion(pts=int(t * 1e9), seq=seq, **kwargs)  # type: ignore[arg-type]


def test_neutral_motion_gives_the_portrait_landmarks(prepared: PreparedSource, config: EngineConfig) -> None:
    target = Retargeter(prepared, config.retarget).retarget(at(0, 0))
    assert np.allclose(target.landmarks, prepared.landmarks, atol=1e-3)
    assert (target.pts, target.seq) == (0, 0)


def test_lost_face_holds_then_eases_to_neutral(prepared: PreparedSource, config: EngineConfig) -> None:
    cfg = RetargetConfig(lost_hold_s=0.4, lost_ease_s=0.8, filter_min_cutoff=50.0, filter_beta=0.0)
    rt = Retargeter(prepared, cfg)
    smiling = dict(expression=Expression(mouth_open=0.2, jaw=0.15), head=HeadMotion(yaw=10.0))
    for i in range(10):
        active = rt.retarget(at(i / 25, i, **smiling))
    lost = [rt.retarget(at(0.4 + i / 25, 10 + i, face_found=False)) for i in range(60)]
    held = lost[5]  # 0.2 s after the loss: still holding
    assert abs(held.expression.mouth_open - active.expression.mouth_open) < 0.01
    assert abs(held.head.yaw - active.head.yaw) < 0.5
    back = lost[-1]  # 2.4 s after: fully neutral
    assert abs(back.expression.mouth_open) < 0.01 and abs(back.head.yaw) < 0.2
    easing = [m.expression.mouth_open for m in lost[10:30]]
    assert all(a >= b - 1e-6 for a, b in zip(easing, easing[1:], strict=False)), "eases monotonically"


def test_lost_face_reaches_neutral_in_bounded_time_with_the_default_filters(prepared: PreparedSource,
                                                                           config: EngineConfig) -> None:
    """The head filter is slow (a fraction of a hertz): the ease to neutral must not pass through it, or a
    lost face would drift back for seconds. Found again, the motion continues from what was shown."""
    cfg = config.retarget
    rt = Retargeter(prepared, cfg)
    turned = dict(expression=Expression(mouth_open=0.2, jaw=0.15), head=HeadMotion(yaw=12.0, tx=0.1, scale=1.05))
    for i in range(100):  # 4 s: the slow head filter has settled on the turn
        active = rt.retarget(at(i / 25, i, **turned))
    assert active.head.yaw > 8.0
    lost = [rt.retarget(at(4.0 + i / 25, 100 + i, face_found=False)) for i in range(1, 40)]
    held = lost[int(cfg.lost_hold_s * 25) - 2]
    assert abs(held.head.yaw - active.head.yaw) < 0.2, "holds what was shown"
    done = next(i for i, m in enumerate(lost, 1) if abs(m.head.yaw) < 1e-6 and abs(m.head.scale - 1) < 1e-9
                and abs(m.expression.mouth_open) < 1e-6)
    assert done / 25 <= cfg.lost_hold_s + cfg.lost_ease_s + 0.04, f"neutral after {done / 25:.2f} s"
    assert np.allclose(lost[-1].landmarks, prepared.landmarks, atol=1e-3)
    # Found again facing front: the picture stays where it is (the filters continue from what was shown,
    # not from the old turned pose).
    again = [rt.retarget(at(4.0 + (40 + i) / 25, 140 + i, head=HeadMotion())) for i in range(5)]
    assert max(abs(m.head.yaw) for m in again) < 0.1 and max(abs(m.head.scale - 1) for m in again) < 1e-3


def test_no_face_before_any_face_is_neutral(prepared: PreparedSource, config: EngineConfig) -> None:
    target = Retargeter(prepared, config.retarget).retarget(at(0, 0, face_found=False))
    assert np.allclose(target.landmarks, prepared.landmarks, atol=1e-3)


def test_limits_and_gains(prepared: PreparedSource) -> None:
    rt = Retargeter(prepared, RetargetConfig(max_yaw=20.0, eye_retargeting=False, mouth_gain=0.5))
    target = rt.retarget(at(0, 0, head=HeadMotion(yaw=60.0),
                            expression=Expression(eye_open_l=0.0, eye_open_r=0.0, mouth_open=0.2)))
    assert target.head.yaw == 20.0
    assert target.expression.eye_open_l == 1.0 and target.expression.eye_open_r == 1.0
    assert abs(target.expression.mouth_open - 0.1) < 1e-9


def test_head_turn_moves_the_nose_sideways(prepared: PreparedSource, config: EngineConfig) -> None:
    rt = Retargeter(prepared, config.retarget)
    left = rt.retarget(at(0, 0, head=HeadMotion(yaw=-15.0))).landmarks
    rt.reset()
    right = rt.retarget(at(0, 0, head=HeadMotion(yaw=15.0))).landmarks
    nose = 1
    assert abs(right[nose, 0] - left[nose, 0]) > 0.2 * prepared.pose.scale
    assert left[nose, 0] > right[nose, 0], "positive yaw turns the nose towards screen-left"


def test_landmark_mode_transfers_deltas(prepared: PreparedSource) -> None:
    rt = Retargeter(prepared, RetargetConfig(mode="landmarks"))
    deltas = np.zeros((478, 3), np.float32)
    deltas[152, 1] = 0.2  # chin down
    target = rt.retarget(at(0, 0, deltas=deltas))
    moved = (target.landmarks[152, :2] - prepared.landmarks[152, :2])
    assert np.linalg.norm(moved) > 0.15 * prepared.pose.scale
    assert np.allclose(target.landmarks[10], prepared.landmarks[10], atol=1e-3)


def test_filter_smooths_jitter(prepared: PreparedSource, config: EngineConfig) -> None:
    rng = np.random.default_rng(1)
    rt = Retargeter(prepared, config.retarget)
    yaws = [rt.retarget(at(i / 30, i, head=HeadMotion(yaw=float(rng.normal(0, 2))))).head.yaw for i in range(90)]
    assert np.std(yaws[30:]) < 0.6 * 2.0  # input jitter: 2 degrees standard deviation
