"""The canonical face: a symmetric, frontal 478-point face in face-frame units (inter-ocular = 1).

Head pose is the rigid fit of a face's stable points to it. It is made by this project from the
portrait bundled with scikit-image (``skimage.data.astronaut``): tracked, mirrored and averaged with its
mirror image so it is left-right symmetric, then aligned (eye line along x, symmetry plane x = 0).
``build_canonical_face()`` regenerates ``assets/canonical_face.json``; a test checks they agree.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import numpy as np
from livepuppet.engine.face import topology as ft
from scipy.spatial import cKDTree

ASSET = "canonical_face.json"


def _frame_align(points: np.ndarray) -> np.ndarray:
    """Origin between the eyes, x along the eye line, IOD = 1, y down in the image plane."""
    right = 0.5 * (points[ft.EYE_R_OUTER] + points[ft.EYE_R_INNER])
    left = 0.5 * (points[ft.EYE_L_OUTER] + points[ft.EYE_L_INNER])
    x = left - right
    scale = np.linalg.norm(x)
    x /= scale
    z = np.array([0.0, 0.0, 1.0]) - x[2] * x
    z /= np.linalg.norm(z)
    y = np.cross(z, x)
    rot = np.stack([x, y, z], axis=1)
    return ((points - 0.5 * (right + left)) @ rot) / scale


def mirror_pairs(face: np.ndarray) -> np.ndarray:
    """For a roughly symmetric frontal face (x = 0 symmetry plane): index of each point's mirror."""
    mirrored = face.copy()
    mirrored[:, 0] *= -1
    return cKDTree(face[:468]).query(mirrored[:468])[1]


def build_canonical_face(landmarks: np.ndarray) -> np.ndarray:
    """Tracked landmarks ``(478, 3)`` of a frontal portrait → symmetric canonical face ``(478, 3)``."""
    face = _frame_align(np.asarray(landmarks, dtype=np.float64))
    pairs = mirror_pairs(face)
    sym = face.copy()
    sym[:468, 0] = 0.5 * (face[:468, 0] - face[pairs, 0])
    sym[:468, 1:] = 0.5 * (face[:468, 1:] + face[pairs, 1:])
    iris_r, iris_l = np.array(ft.IRIS_R), np.array(ft.IRIS_L)
    # The iris rings are ordered (center, +x, -y, -x, +y) on both eyes: mirror by swapping ±x.
    mirror_l = face[iris_l][[0, 3, 2, 1, 4]] * np.array([-1.0, 1.0, 1.0])
    sym[iris_r] = 0.5 * (face[iris_r] + mirror_l)
    sym[iris_l] = sym[iris_r][[0, 3, 2, 1, 4]] * np.array([-1.0, 1.0, 1.0])
    return _frame_align(sym)


@lru_cache(maxsize=1)
def canonical_face() -> np.ndarray:
    """The shipped canonical face ``(478, 3) f64`` (read once)."""
    text = (resources.files("livepuppet.assets") / ASSET).read_text(encoding="utf-8")
    return np.array(json.loads(text)["landmarks"], dtype=np.float64)
