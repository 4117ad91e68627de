"""Head pose from landmarks: a rigid fit (rotation, scale, translation) of the face's stable points to
the canonical face (:mod:`canonical_face`).

In the resulting face frame the origin is between the eyes, x runs along the eye line, y down, z into
the screen, and one unit is the canonical inter-ocular distance: coordinates there are normalized for
rotation, position and size across faces and frames.
"""

from __future__ import annotations

import numpy as np
from livepuppet.engine.face import topology as ft
from livepuppet.engine.face.canonical_face import canonical_face
from livepuppet.engine.types import FacePose

_POSE = np.array(ft.POSE_POINTS)


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Least-squares similarity ``dst ≈ s R src + t`` (Umeyama 1991) for (N, D) point sets."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    cov = b.T @ a / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.eye(src.shape[1])
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1, -1] = -1.0
    rot = u @ d @ vt
    var = float((a**2).sum()) / len(src)
    s = float(np.trace(np.diag(sig) @ d)) / max(var, 1e-12)
    return rot, s, mu_d - s * rot @ mu_s


def estimate_pose(landmarks: np.ndarray) -> FacePose:
    """Landmarks ``(478, 3)`` in pixels → :class:`FacePose` (rotation, origin, scale)."""
    pts = np.asarray(landmarks, dtype=np.float64)
    rot, scale, origin = umeyama(canonical_face()[_POSE], pts[_POSE])
    if scale < 1e-6:
        raise ValueError("degenerate landmarks: the face has no extent")
    return FacePose(rotation=rot, origin=origin, scale=scale)
