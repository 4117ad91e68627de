"""Is a tracked face shaped like a face? A face tracker also "finds" faces in swirls, drawings and
broken frames; such tracks must never drive the avatar.

The test is the residual of the rigid fit to the canonical face (:mod:`geometry`) over the stable points
(eye corners, nose ridge, face sides), plus the face's size and absolute pose. Real faces, any person and
expression, fit within 0.01–0.04 inter-ocular units; swirled, upside-down and drawn faces give ≥ 0.10.
"""

from __future__ import annotations

import numpy as np
from livepuppet.engine.config import DriverConfig
from livepuppet.engine.face import topology as ft
from livepuppet.engine.face.canonical_face import canonical_face
from livepuppet.engine.types import FaceTrack, matrix_to_euler

_POSE = np.array(ft.POSE_POINTS)


def fit_residual(face: np.ndarray) -> float:
    """RMS distance of the stable points of ``face (478, 3)`` (face frame) from the canonical face."""
    diff = np.asarray(face, dtype=np.float64)[_POSE] - canonical_face()[_POSE]
    return float(np.sqrt((diff**2).sum(axis=1).mean()))


def implausible_reason(track: FaceTrack, face: np.ndarray, config: DriverConfig) -> str | None:
    """Why the track ``track`` (with its face-frame landmarks ``face``) is not a usable face, or None."""
    if track.pose is None or track.landmarks is None:
        return "no face"
    if not np.all(np.isfinite(track.landmarks)):
        return "non-finite landmarks"
    if track.pose.scale < config.min_face_px:
        return f"face too small ({track.pose.scale:.1f} px between the eyes)"
    yaw, pitch, _ = matrix_to_euler(track.pose.rotation)
    if max(abs(yaw), abs(pitch)) > config.max_abs_angle:
        return f"head turned too far ({yaw:.0f}° yaw, {pitch:.0f}° pitch)"
    residual = fit_residual(face)
    if residual > config.max_fit_residual:
        return f"not face-shaped (fit residual {residual:.3f})"
    return None
