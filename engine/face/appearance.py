"""A face's look: the colour of small skin patches at stable landmarks and of the background beside the face.

A cut between two people framed alike leaves the mesh's shape nearly unchanged (MediaPipe's mesh barely
follows identity), but skin tone, lighting and background change at once; within one shot they change
slowly. The patches ride on the landmarks, so talking and turning move them with the face. Lab colour, so a
distance is roughly how different two colours look.
"""

from __future__ import annotations

import cv2
import numpy as np

# Stable skin: forehead, cheeks, nose bridge (not lips, eyes or brows, which move and change colour).
SKIN_POINTS = (10, 151, 9, 108, 337, 50, 280, 101, 330, 205, 425, 123, 352, 6, 197, 195)
_EYE_OUTER = (33, 263)
_SIDE_POINTS = (234, 454)  # the face's sides at eye height: background lies outwards
_TOP_POINT = 10
PATCH_RADIUS = 0.06  # of the eye-corner distance
BACKGROUND_OUT = 0.45  # how far outside the face the background patches lie (eye-corner distances)


def patch_centres(landmarks_xy: np.ndarray) -> tuple[np.ndarray, float]:
    """``(K, 2)`` pixel centres (the skin points, then two background points beside the face and one above)
    and the eye-corner distance they are spaced by."""
    lm = landmarks_xy[:, :2].astype(np.float64)
    left, right = lm[_EYE_OUTER[0]], lm[_EYE_OUTER[1]]
    across = right - left
    unit = across / max(float(np.linalg.norm(across)), 1e-6)
    up = np.array([unit[1], -unit[0]])
    iod = float(np.linalg.norm(across))
    side_l = lm[_SIDE_POINTS[0]] - unit * BACKGROUND_OUT * iod
    side_r = lm[_SIDE_POINTS[1]] + unit * BACKGROUND_OUT * iod
    top = lm[_TOP_POINT] + up * BACKGROUND_OUT * iod
    return np.vstack([lm[list(SKIN_POINTS)], side_l, side_r, top]), iod


def face_look(pixels: np.ndarray, landmarks_xy: np.ndarray) -> np.ndarray:
    """``(K, 3) f32`` mean Lab colour of each patch of ``pixels (H, W, 3) u8`` RGB; NaN where a patch falls
    outside the image. ``landmarks_xy`` are in ``pixels``' coordinates."""
    h, w = pixels.shape[:2]
    centres, iod = patch_centres(landmarks_xy)
    r = max(1, round(PATCH_RADIUS * iod))
    means = np.full((len(centres), 3), np.nan, np.float32)
    xy = np.round(centres).astype(np.int64)
    inside = (xy[:, 0] >= r) & (xy[:, 0] < w - r) & (xy[:, 1] >= r) & (xy[:, 1] < h - r)
    for i, (x, y) in zip(np.flatnonzero(inside).tolist(), xy[inside].tolist(), strict=True):
        means[i] = cv2.mean(pixels[y - r: y + r + 1, x - r: x + r + 1])[:3]
    ok = np.isfinite(means[:, 0])
    if ok.any():
        lab = cv2.cvtColor((means[ok] / 255.0).reshape(1, -1, 3).astype(np.float32), cv2.COLOR_RGB2Lab)
        means[ok] = lab.reshape(-1, 3)
    return means


def look_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Median Lab distance over the patches seen in both (robust to a few occluded ones); NaN if too few."""
    d = np.linalg.norm(a - b, axis=1)
    d = d[np.isfinite(d)]
    return float(np.median(d)) if len(d) >= len(a) // 2 else float("nan")
