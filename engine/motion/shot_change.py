"""Cut and new-person detection on the driver: when the neutral learned so far stops being this face's.

Cues, each cheap and per frame: the face jumps in scale or position between successive faces (a cut, or
someone else sitting down), the face was gone for a while (a new sitting), or its face-shape signature
(face-frame positions of the stable upper-face points, which follow identity, not expression) stays far
from the reference's while the head is near its reference pose.
"""

from __future__ import annotations

import math

import numpy as np
from livepuppet.engine.config import DriverConfig
from livepuppet.engine.face import topology as ft
from livepuppet.engine.face.canonical_face import canonical_face
from livepuppet.engine.types import FacePose, matrix_to_euler

_MOVING = set(ft.LIP_OUTER_UPPER + ft.LIP_OUTER_LOWER + ft.LIP_INNER_UPPER + ft.LIP_INNER_LOWER + ft.EYE_R_UPPER
              + ft.EYE_R_LOWER + ft.EYE_L_UPPER + ft.EYE_L_LOWER + ft.BROW_R + ft.BROW_L + ft.EYE_R_UPPER_RING
              + ft.EYE_L_UPPER_RING + ft.EYE_R_LOWER_RING + ft.EYE_L_LOWER_RING)
SIGNATURE_MAX_TURN = 8.0  # degrees: signatures are compared only this close to the reference pose


def _signature_points() -> np.ndarray:
    can = canonical_face()
    above_mouth = can[:, 1] < can[ft.NOSE_BASE, 1]
    return np.array([i for i in range(468) if i not in _MOVING and above_mouth[i]], dtype=np.int64)


def signature_distance(face: np.ndarray, reference: np.ndarray, points: np.ndarray) -> float:
    """RMS in-plane distance (inter-ocular units) between two face-frame shapes over ``points``."""
    diff = face[points, :2] - reference[points, :2]
    return float(np.sqrt((diff**2).sum(axis=1).mean()))


class ShotChangeDetector:
    """Per-driver state; :meth:`update` is called with every plausible face and says why it is a new shot."""

    def __init__(self, config: DriverConfig) -> None:
        self._config = config
        self._points = _signature_points()
        self._prev_pose: FacePose | None = None
        self._prev_ns: int | None = None
        self._far_since_ns: int | None = None

    def reset(self) -> None:
        self._prev_pose = None
        self._prev_ns = None
        self._far_since_ns = None

    def update(self, pts: int, pose: FacePose, face: np.ndarray, ref_pose: FacePose | None,
               ref_face: np.ndarray | None) -> str | None:
        """The reason this face starts a new shot ("lost", "jump", "identity"), or None."""
        c = self._config
        prev, prev_ns = self._prev_pose, self._prev_ns
        self._prev_pose, self._prev_ns = pose, pts
        if prev is None or prev_ns is None or ref_pose is None or ref_face is None:
            return None
        if (pts - prev_ns) / 1e9 >= c.lost_relearn_s:
            return "lost"
        if abs(math.log(pose.scale / prev.scale)) > c.max_scale_jump or \
                np.linalg.norm(pose.origin[:2] - prev.origin[:2]) / prev.scale > c.max_shift_jump:
            return "jump"
        if c.identity_threshold > 0.0:
            turn = max(abs(a) for a in matrix_to_euler(pose.rotation @ ref_pose.rotation.T))
            if turn <= SIGNATURE_MAX_TURN and signature_distance(face, ref_face, self._points) > c.identity_threshold:
                if self._far_since_ns is None:
                    self._far_since_ns = pts
                if (pts - self._far_since_ns) / 1e9 >= c.identity_confirm_s:
                    self._far_since_ns = None
                    return "identity"
            else:
                self._far_since_ns = None
        return None
