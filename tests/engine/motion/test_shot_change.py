"""Shot-change cues on synthetic faces: jumps, a long absence, a changed look, and (opt-in) another face
shape."""

from __future__ import annotations

import math

import numpy as np
from livepuppet.engine.config import DriverConfig
from livepuppet.engine.face.canonical_face import canonical_face
from livepuppet.engine.motion.shot_change import ShotChange, ShotChangeDetector
from livepuppet.engine.types import FacePose

FPS = 25


def pose(scale: float = 50.0, x: float = 256.0) -> FacePose:
    return FacePose(rotation=np.eye(3), origin=np.array([x, 256.0, 0.0]), scale=scale)


def reason(change: ShotChange | None) -> str | None:
    return None if change is None else change.reason


def run(detector: ShotChangeDetector, poses: list[FacePose], faces: list[np.ndarray],
        times: list[float] | None = None) -> list[str | None]:
    ref_pose, ref_face = poses[0], faces[0]
    times = times or [i / FPS for i in range(len(poses))]
    return [reason(detector.update(int(t * 1e9), p, f, ref_pose, ref_face))
            for t, p, f in zip(times, poses, faces, strict=True)]


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


def test_a_look_that_jumps_and_stays_is_a_cut_but_a_passing_change_is_not() -> None:
    face = canonical_face()
    rng = np.random.default_rng(1)
    first = rng.uniform([40, -10, -10], [80, 20, 30], (19, 3))  # Lab colours of the patches

    def looks(*runs: tuple[np.ndarray, int]) -> list[np.ndarray]:
        return [look + rng.normal(0, 0.5, look.shape) for look, n in runs for _ in range(n)]  # sensor noise

    faces = [face + 0.001 * i for i in range(40)]  # each frame's own face, to tell them apart

    def changes(seq: list[np.ndarray]) -> list[ShotChange | None]:
        detector = ShotChangeDetector(DriverConfig(look_confirm_s=0.1))
        p = pose()
        return [detector.update(int(i / FPS * 1e9), p, faces[i], p, face, look) for i, look in enumerate(seq)]

    def events(seq: list[np.ndarray]) -> list[str | None]:
        return [reason(c) for c in changes(seq)]

    other = first + rng.normal(0, 15, first.shape)  # another person, another background
    cut_changes = changes(looks((first, 10), (other, 10)))
    cut = [reason(c) for c in cut_changes]
    assert cut.index("look") == 10 + math.ceil(0.1 * FPS) and cut.count("look") == 1
    confirmed = cut_changes[cut.index("look")]
    assert confirmed is not None and confirmed.face is faces[10]  # the new shot's first face, not a later one
    flash = events(looks((first, 10), (other, 1), (first, 10)))  # one odd frame (a flash, a tracking glitch)
    assert not any(flash)
    drift = events([first + 0.3 * i for i in range(40)])  # exposure creeping: 0.5 Lab units a frame
    assert not any(drift)
    off = ShotChangeDetector(DriverConfig(max_look_jump=0.0))
    assert not any(off.update(int(i / FPS * 1e9), pose(), faces[i], pose(), face, look)
                   for i, look in enumerate(looks((first, 10), (other, 10))))
