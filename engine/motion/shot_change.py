"""Cut and new-person detection on the driver: when the neutral learned so far stops being this face's.

Cues, each cheap and per frame: the face jumps in scale or position between successive faces (a cut, or
someone else sitting down), the face was gone for a while (a new sitting), its look (the colour of skin
patches and of the background beside it, :mod:`~livepuppet.engine.face.appearance`) jumps between
successive faces and stays changed (a cut between two people framed alike, which leaves the mesh's shape
nearly as it was), or its face-shape signature (face-frame positions of the stable upper-face points) stays
far from the reference's while the head is near its reference pose (off by default: MediaPipe's mesh barely
follows identity).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from livepuppet.engine.config import DriverConfig
from livepuppet.engine.face import topology as ft
from livepuppet.engine.face.appearance import look_distance
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


@dataclass(frozen=True, slots=True)
class ShotChange:
    """A new shot, why ("lost", "jump", "look", "identity"), and the face its neutral is learned from: the face
    that showed it, or for a look cut the shot's first face (the look is confirmed only later)."""

    reason: str
    pose: FacePose
    face: np.ndarray


class ShotChangeDetector:
    """Per-driver state; :meth:`update` is called with every plausible face and says whether it starts a new
    shot."""

    def __init__(self, config: DriverConfig) -> None:
        self._config = config
        self._points = _signature_points()
        self._prev_pose: FacePose | None = None
        self._prev_ns: int | None = None
        self._far_since_ns: int | None = None
        self._prev_look: np.ndarray | None = None
        self._look_change: tuple[int, np.ndarray, FacePose, np.ndarray] | None = None  # since when, the look
        #   before the jump, the pose and face at the jump
        self._shot_start: tuple[FacePose, np.ndarray] | None = None  # of the look cut being reported

    def reset(self) -> None:
        self._prev_pose = None
        self._prev_ns = None
        self._far_since_ns = None
        self._prev_look = None
        self._look_change = None

    def update(self, pts: int, pose: FacePose, face: np.ndarray, ref_pose: FacePose | None,
               ref_face: np.ndarray | None, look: np.ndarray | None = None) -> ShotChange | None:
        """The new shot this face belongs to, or None."""
        reason = self._reason(pts, pose, face, ref_pose, ref_face, look)
        if reason is None:
            return None
        if reason == "look":
            assert self._shot_start is not None
            return ShotChange(reason, *self._shot_start)
        return ShotChange(reason, pose, face)

    def _reason(self, pts: int, pose: FacePose, face: np.ndarray, ref_pose: FacePose | None,
                ref_face: np.ndarray | None, look: np.ndarray | None) -> str | None:
        c = self._config
        prev, prev_ns = self._prev_pose, self._prev_ns
        self._prev_pose, self._prev_ns = pose, pts
        prev_look, self._prev_look = self._prev_look, look
        if prev is None or prev_ns is None or ref_pose is None or ref_face is None:
            self._look_change = None
            return None
        if (pts - prev_ns) / 1e9 >= c.lost_relearn_s:
            self._look_change = None
            return "lost"
        if abs(math.log(pose.scale / prev.scale)) > c.max_scale_jump or \
                np.linalg.norm(pose.origin[:2] - prev.origin[:2]) / prev.scale > c.max_shift_jump:
            self._look_change = None
            return "jump"
        if c.max_look_jump > 0.0 and look is not None and self._look_cut(pts, pose, face, look, prev_look):
            return "look"
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

    def _look_cut(self, pts: int, pose: FacePose, face: np.ndarray, look: np.ndarray,
                  prev_look: np.ndarray | None) -> bool:
        """The look jumped between successive faces and has stayed away from the look before it; then
        ``_shot_start`` is the new shot's first face (the neutral is learned from it, not from a face
        ``look_confirm_s`` into the shot)."""
        c = self._config
        if self._look_change is None:
            if prev_look is not None and look_distance(look, prev_look) > c.max_look_jump:
                self._look_change = (pts, prev_look, pose, face)
            return False
        since, before, first_pose, first_face = self._look_change
        if not look_distance(look, before) > 0.5 * c.max_look_jump:  # back as it was (or unseen): no cut
            self._look_change = None
            return False
        if (pts - since) / 1e9 >= c.look_confirm_s:
            self._look_change = None
            self._shot_start = (first_pose, first_face)
            return True
        return False
