"""Shot-change cues on synthetic faces: jumps, a long absence, and (opt-in) another face shape."""

from __future__ import annotations

import numpy as np
from livepuppet.engine.config import DriverConfig
from livepuppet.engine.face.canonical_face import canonical_face
from livepuppet.engine.motion.shot_change import ShotChangeDetector
from livepuppet.engine.types import FacePose

FPS = 25


def pose(scale: float = 50.0, x: float = 256.0) -> FacePose:
    return FacePose(rotation=np.eye(3), origin=np.array([x, 256.0, 0.0]), scale=scale)


def run(detector: ShotChangeDetector, poses: list[FacePose], faces: list[np.ndarray],
        times: list[float] | None = None) -> list[str | None]:
    ref_pose, ref_face = poses[0], faces[0]
    times = times or [i / FPS for i in range(len(poses))]
    return [detector.update(int(t * 1e9), p, f, ref_pose, ref_face) for t, p, f in zip(times, poses, faces,
                                                                                       strict=True)]


def test_scale_and_position_jumps_are_cuts_but_steady_motion_is_not() -> None:
    face = canonical_face()
    steady = [pose(50.0 * (1 + 0.004 * i), 256.0 + 2.0 * i) for i in range(50)]  # leaning in, drifting
    assert not any(run(ShotChangeDetector(DriverConfig()), steady, [face] * 50))
    jump = [pose()] * 10 + [pose(80.0)] * 5
    assert run(ShotChangeDetector(DriverConfig()), jump, [face] * 15)[10] == "jump"
    shift = [pose()] * 10 + [pose(x=400.0)] * 5  # 2.9 inter-ocular units sideways in one frame
    assert run(ShotChangeDetector(DriverConfig()), shift, [face] * 15)[10] == "jump"


def test_a_long_absence_is_a_new_sitting() -> None:
    times = [0.0, 0.04, 0.08, 1.5]
    assert run(ShotChangeDetector(DriverConfig()), [pose()] * 4, [canonical_face()] * 4, times)[-1] == "lost"


def test_another_face_shape_is_opt_in_and_confirmed_over_time() -> None:
    face = canonical_face()
    other = face * np.array([1.15, 0.9, 1.0])  # wider, shorter: another person's proportions
    faces = [face] * 5 + [other] * 20
    assert not any(run(ShotChangeDetector(DriverConfig()), [pose()] * 25, faces))  # off by default
    events = run(ShotChangeDetector(DriverConfig(identity_threshold=0.03, identity_confirm_s=0.2)),
                 [pose()] * 25, faces)
    assert events.index("identity") == 5 + int(0.2 * FPS)
