"""Synthesized mouth interior: dark cavity, upper and lower teeth, tongue, drawn inside the inner-lip
contour when the mouth opens wider than in the portrait (a mesh warp can only stretch the lip line)."""

from __future__ import annotations

import cv2
import numpy as np
from livepuppet.engine.face import topology as ft
from livepuppet.engine.source import MouthLook, inner_mouth_area
from livepuppet.kernels import jit
from livepuppet.kernels.mouth_shade import shade_mouth

_POLY = ft.inner_mouth_polygon()
_UPPER = np.array(ft.LIP_INNER_UPPER)
_LOWER = np.array(ft.LIP_INNER_LOWER)


def paint_mouth_interior(image: np.ndarray, landmarks: np.ndarray, look: MouthLook, iod_px: float,
                         head_scale: float = 1.0) -> None:
    """In place on ``image (S, S, 3) u8``: blend a synthesized interior into the target inner-lip polygon
    of ``landmarks (478, ≥2)`` (crop pixels). Fades in as the mouth opens past the source's opening.
    ``iod_px`` is the target face's inter-ocular distance, ``head_scale`` its size relative to the portrait's:
    a head that only grows (the driver leans in) does not open the mouth."""
    area = inner_mouth_area(landmarks) / (head_scale * head_scale)
    extra = area - 1.05 * look.source_open_area
    fade = float(np.clip(extra / max(0.5 * look.source_open_area, 0.01 * iod_px * iod_px), 0.0, 1.0))
    if fade <= 0.0:
        return
    poly = landmarks[_POLY, :2]
    x0, y0 = np.floor(poly.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(poly.max(axis=0)).astype(int) + 3
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    local = poly - np.array([x0, y0])
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round(local * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
    alpha = cv2.GaussianBlur(mask, (3, 3), 0).astype(np.float32) / 255.0 * fade

    up = landmarks[_UPPER, :2]
    lo = landmarks[_LOWER, :2]
    order_u, order_l = np.argsort(up[:, 0]), np.argsort(lo[:, 0])
    columns = np.arange(x0, x1, dtype=np.float32)
    top = np.interp(columns, up[order_u, 0], up[order_u, 1])  # upper lip edge per column
    bottom = np.interp(columns, lo[order_l, 0], lo[order_l, 1])
    cx = float(0.5 * (up[0, 0] + up[-1, 0]))
    half = max(0.5 * abs(float(up[-1, 0] - up[0, 0])), 1.0)
    colors = (np.asarray(look.cavity, np.float64), np.asarray(look.tongue, np.float64),
              np.asarray(look.teeth, np.float64))
    region = image[y0:y1, x0:x1]
    if jit.available():
        shade_mouth(region, alpha, top, bottom, int(y0), int(x0), cx, half, float(iod_px), *colors)
    else:
        region[...] = _shade_numpy(region, alpha, top, bottom, float(y0), columns, cx, half, float(iod_px), *colors)


def _shade_numpy(region: np.ndarray, alpha: np.ndarray, top: np.ndarray, bottom: np.ndarray, y0: float,
                 columns: np.ndarray, cx: float, half: float, iod_px: float, cavity: np.ndarray,
                 tongue_rgb: np.ndarray, teeth_rgb: np.ndarray) -> np.ndarray:
    """:func:`~livepuppet.kernels.mouth_shade.shade_mouth` in NumPy (installs without Numba): the blended
    box ``(h, w, 3) u8``."""
    ys = y0 + np.arange(region.shape[0], dtype=np.float64)[:, None]
    top, bottom = top[None, :], bottom[None, :]
    gap = np.maximum(bottom - top, 1e-3)
    v = np.clip((ys - top) / gap, 0.0, 1.0)  # 0 at the upper lip, 1 at the lower lip
    u = np.clip(np.abs(columns.astype(np.float64)[None, :] - cx) / half, 0.0, 1.0)  # 0 centre, 1 corners

    # Cavity: darkest in the middle, a little lighter near the lips (ambient light).
    shade = (0.55 + 0.45 * (np.abs(v - 0.5) * 2.0) ** 2) * (1.0 - 0.3 * u)
    color = cavity[None, None, :] * shade[..., None]
    # Tongue: a soft ellipse rising from the lower lip.
    tongue = np.clip(1.0 - ((u / 0.75) ** 2 + ((1.0 - v) / 0.45) ** 2), 0.0, 1.0) ** 0.5
    tongue = tongue * np.clip((gap - 0.12 * iod_px) / (0.1 * iod_px), 0.0, 1.0)
    color = color * (1.0 - tongue[..., None]) + tongue_rgb[None, None, :] * (0.7 + 0.3 * v[..., None]) \
        * tongue[..., None]
    # Teeth: a band under the upper lip (wider when the mouth is more open), a thinner one above the lower lip.
    tooth_h = np.minimum(0.32 * gap, 0.13 * iod_px)
    upper_teeth = np.clip((top + tooth_h - ys) / 1.5, 0.0, 1.0) * np.clip((0.85 - u) / 0.2, 0.0, 1.0)
    lower_h = np.minimum(0.12 * gap, 0.05 * iod_px)
    lower_teeth = np.clip((ys - (bottom - lower_h)) / 1.5, 0.0, 1.0) * np.clip((0.6 - u) / 0.2, 0.0, 1.0) \
        * np.clip((gap - 0.2 * iod_px) / (0.1 * iod_px), 0.0, 1.0)
    teeth = np.maximum(upper_teeth, lower_teeth)
    teeth_color = teeth_rgb[None, None, :] * (0.8 + 0.2 * (1.0 - u[..., None]))
    color = color * (1.0 - teeth[..., None]) + teeth_color * teeth[..., None]

    a = alpha.astype(np.float64)[..., None]
    blended = region.astype(np.float64) * (1.0 - a) + color * a
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)
