"""Driver motion: a face track turned into image-independent :class:`Motion` relative to a reference.

The reference is the driver's neutral: the first plausible face, learned again at a cut or a new person
(:mod:`shot_change`) or on :meth:`MotionEstimator.calibrate` ("reset neutral", the same path from the page,
the API and the CLI). A new neutral is eased in over ``driver.ease_s`` instead of jumping. Tracks that are not
face-shaped (:mod:`plausibility`) count as no face, so they never drive the avatar.
"""

from __future__ import annotations

import logging

import numpy as np
from livepuppet.engine.config import DriverConfig
from livepuppet.engine.face.expression import FaceFeatures, relative_expression
from livepuppet.engine.face.plausibility import implausible_reason
from livepuppet.engine.motion.shot_change import ShotChangeDetector
from livepuppet.engine.types import Expression, FacePose, FaceTrack, HeadMotion, Motion, matrix_to_euler

log = logging.getLogger(__name__)
_HEAD_FIELDS = ("yaw", "pitch", "roll", "tx", "ty", "scale")


def _smoothstep(t: float) -> float:
    t = min(1.0, max(0.0, t))
    return t * t * (3.0 - 2.0 * t)


def blend_motion(a: Motion, b: Motion, w: float) -> Motion:
    """``(1 - w) a + w b`` for head, expression and deltas; timestamps and flags from ``b``."""
    head = HeadMotion(*((1 - w) * getattr(a.head, f) + w * getattr(b.head, f) for f in _HEAD_FIELDS))
    expression = Expression.from_array((1 - w) * a.expression.as_array() + w * b.expression.as_array())
    deltas = b.deltas
    if a.deltas is not None and b.deltas is not None:
        deltas = ((1 - w) * a.deltas + w * b.deltas).astype(np.float32)
    return Motion(pts=b.pts, seq=b.seq, head=head, expression=expression, deltas=deltas, face_found=b.face_found)


class MotionEstimator:
    """Per-driver state: holds the reference face; converts each :class:`FaceTrack` to a :class:`Motion`."""

    def __init__(self, keep_deltas: bool = True, config: DriverConfig | None = None) -> None:
        self._keep_deltas = keep_deltas
        self._config = config or DriverConfig()
        self._shots = ShotChangeDetector(self._config)
        self._ref_pose: FacePose | None = None
        self._ref_face: np.ndarray | None = None
        self._ref_features: FaceFeatures | None = None
        self._calibrate_next = False
        self._last_face: Motion | None = None  # the last motion given out that showed a face
        self._ease_from: Motion | None = None
        self._ease_start_ns = 0
        self.neutral_changes = 0  # times a neutral was learned again (cut, new person, reset)
        self.rejected = 0  # tracks refused as not face-shaped
        self.last_rejection = ""

    def reset(self) -> None:
        self._ref_pose = self._ref_face = self._ref_features = None
        self._calibrate_next = False
        self._shots.reset()
        self._last_face = self._ease_from = None

    def calibrate(self) -> None:
        """Take the next plausible face as the new neutral reference, eased in ("reset neutral")."""
        self._calibrate_next = True

    @property
    def has_reference(self) -> bool:
        return self._ref_pose is not None

    def estimate(self, track: FaceTrack) -> Motion:
        if not track.found or track.landmarks is None or track.pose is None:
            return self._give(Motion(pts=track.pts, seq=track.seq, face_found=False))
        pose = track.pose
        face = pose.to_face(track.landmarks.astype(np.float64))
        reason = implausible_reason(track, face, self._config)
        if reason is not None:
            self.rejected += 1
            self.last_rejection = reason
            return self._give(Motion(pts=track.pts, seq=track.seq, face_found=False))
        shot = self._shots.update(track.pts, pose, face, self._ref_pose, self._ref_face, track.look)
        if shot is not None:
            self._learn(track.pts, shot.pose, shot.face, shot.reason)
        elif self._ref_pose is None or self._calibrate_next:
            self._learn(track.pts, pose, face, "reset" if self._calibrate_next else "first face")
        assert self._ref_pose is not None and self._ref_face is not None and self._ref_features is not None
        ref = self._ref_pose
        yaw, pitch, roll = matrix_to_euler(pose.rotation @ ref.rotation.T)
        shift = (pose.origin - ref.origin) / ref.scale
        head = HeadMotion(yaw=yaw, pitch=pitch, roll=roll, tx=float(shift[0]), ty=float(shift[1]),
                          scale=pose.scale / ref.scale)
        deltas = (face - self._ref_face).astype(np.float32) if self._keep_deltas else None
        motion = Motion(pts=track.pts, seq=track.seq, head=head,
                        expression=relative_expression(FaceFeatures.measure(face), self._ref_features),
                        deltas=deltas)
        if self._ease_from is not None:
            w = _smoothstep((track.pts - self._ease_start_ns) / 1e9 / max(self._config.ease_s, 1e-6))
            motion = blend_motion(self._ease_from, motion, w)
            if w >= 1.0:
                self._ease_from = None
        return self._give(motion)

    def _learn(self, pts: int, pose: FacePose, face: np.ndarray, why: str) -> None:
        """This face becomes the neutral; ease from what the avatar was doing if it was showing a face."""
        if self._ref_pose is not None:
            self.neutral_changes += 1
            log.info("driver neutral learned again (%s)", why)
        last = self._last_face
        if last is not None and (pts - last.pts) / 1e9 < self._config.lost_relearn_s:
            self._ease_from = last
            self._ease_start_ns = pts
        self._ref_pose, self._ref_face, self._ref_features = pose, face, FaceFeatures.measure(face)
        self._calibrate_next = False

    def _give(self, motion: Motion) -> Motion:
        if motion.face_found:
            self._last_face = motion
        return motion
