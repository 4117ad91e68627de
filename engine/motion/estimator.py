"""Driver motion: a face track turned into image-independent :class:`Motion` relative to a reference.

The reference is the driver's neutral: the first frame with a face, or one set by :meth:`calibrate`.
"""

from __future__ import annotations

import numpy as np
from livepuppet.engine.face.expression import FaceFeatures, relative_expression
from livepuppet.engine.types import FacePose, FaceTrack, HeadMotion, Motion, matrix_to_euler


class MotionEstimator:
    """Per-driver state: holds the reference face; converts each :class:`FaceTrack` to a :class:`Motion`."""

    def __init__(self, keep_deltas: bool = True) -> None:
        self._keep_deltas = keep_deltas
        self._ref_pose: FacePose | None = None
        self._ref_face: np.ndarray | None = None
        self._ref_features: FaceFeatures | None = None
        self._calibrate_next = False

    def reset(self) -> None:
        self._ref_pose = self._ref_face = self._ref_features = None

    def calibrate(self) -> None:
        """Take the next frame with a face as the new neutral reference."""
        self._calibrate_next = True

    @property
    def has_reference(self) -> bool:
        return self._ref_pose is not None

    def estimate(self, track: FaceTrack) -> Motion:
        if not track.found or track.landmarks is None or track.pose is None:
            return Motion(pts=track.pts, seq=track.seq, face_found=False)
        pose = track.pose
        face = pose.to_face(track.landmarks.astype(np.float64))
        features = FaceFeatures.measure(face)
        if self._ref_pose is None or self._calibrate_next:
            self._ref_pose, self._ref_face, self._ref_features = pose, face, features
            self._calibrate_next = False
        assert self._ref_face is not None and self._ref_features is not None
        ref = self._ref_pose
        yaw, pitch, roll = matrix_to_euler(pose.rotation @ ref.rotation.T)
        shift = (pose.origin - ref.origin) / ref.scale
        head = HeadMotion(yaw=yaw, pitch=pitch, roll=roll, tx=float(shift[0]), ty=float(shift[1]),
                          scale=pose.scale / ref.scale)
        deltas = (face - self._ref_face).astype(np.float32) if self._keep_deltas else None
        return Motion(pts=track.pts, seq=track.seq, head=head,
                      expression=relative_expression(features, self._ref_features), deltas=deltas)
