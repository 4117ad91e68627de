"""Feathered blending on the CPU (OpenCV): the twin of the GPU blend kernel."""

from __future__ import annotations

import cv2
import numpy as np


def feather_mask(side: int, feather: float) -> np.ndarray:
    """Square mask ``(side, side) f32``: 1 inside, easing (smoothstep) to 0 over ``feather × side``
    pixels at every edge, so a pasted square leaves no visible seam."""
    width = max(1.0, feather * side)
    ramp = (np.arange(side, dtype=np.float32) + 0.5) / width
    edge = np.minimum(ramp, ramp[::-1])
    edge = np.clip(edge, 0.0, 1.0)
    edge = edge * edge * (3.0 - 2.0 * edge)
    return np.minimum(edge[:, None], edge[None, :]).astype(np.float32)


def feather_blend(background: np.ndarray, foreground: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``background * (1 - mask) + foreground * mask`` for (h, w, 3) u8 images and an (h, w) f32 mask
    in [0, 1]; returns a new (h, w, 3) u8 image (rounded)."""
    inverse = 1.0 - mask
    return cv2.blendLinear(foreground, background, mask, inverse)
