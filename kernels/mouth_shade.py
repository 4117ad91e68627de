"""The synthesized mouth interior's shading and blend, one compiled pass over the mouth's box: the twin of
the NumPy expressions in :mod:`livepuppet.engine.render.mouth_interior` (same formulas, in float64), which
spend most of their time allocating some forty temporary arrays."""

from __future__ import annotations

import numpy as np
from livepuppet.kernels.jit import cpu_kernel


@cpu_kernel
def _clip01(v: float) -> float:
    return 0.0 if v < 0.0 else (1.0 if v > 1.0 else v)


@cpu_kernel
def shade_mouth(region: np.ndarray, alpha: np.ndarray, top: np.ndarray, bottom: np.ndarray, y0: int, x0: int,
                cx: float, half: float, iod: float, cavity: np.ndarray, tongue_rgb: np.ndarray,
                teeth_rgb: np.ndarray) -> None:
    """In place on ``region (h, w, 3) u8`` (the box at column ``x0``, row ``y0`` of the crop): cavity, tongue and
    teeth between the upper lip edge ``top (w,)`` and the lower ``bottom (w,)``, blended by ``alpha (h, w)``.
    ``cx``/``half``: the mouth's centre and half width; ``iod``: the inter-ocular distance (pixels)."""
    h, w = alpha.shape
    for j in range(w):
        x = np.float64(x0 + j)
        t, b = np.float64(top[j]), np.float64(bottom[j])
        gap = max(b - t, 1e-3)
        u = _clip01(abs(x - cx) / half)
        tooth_h = min(0.32 * gap, 0.13 * iod)
        lower_h = min(0.12 * gap, 0.05 * iod)
        tongue_open = _clip01((gap - 0.12 * iod) / (0.1 * iod))
        lower_open = _clip01((gap - 0.2 * iod) / (0.1 * iod))
        upper_side = _clip01((0.85 - u) / 0.2)
        lower_side = _clip01((0.6 - u) / 0.2)
        for i in range(h):
            a = np.float64(alpha[i, j])
            if a <= 0.0:
                continue
            y = np.float64(y0 + i)
            v = _clip01((y - t) / gap)
            d = abs(v - 0.5) * 2.0
            shade = (0.55 + 0.45 * d * d) * (1.0 - 0.3 * u)
            q = 1.0 - ((u / 0.75) ** 2 + ((1.0 - v) / 0.45) ** 2)
            tongue = np.sqrt(_clip01(q)) * tongue_open
            upper = _clip01((t + tooth_h - y) / 1.5) * upper_side
            lower = _clip01((y - (b - lower_h)) / 1.5) * lower_side * lower_open
            teeth = max(upper, lower)
            tongue_light = 0.7 + 0.3 * v
            teeth_light = 0.8 + 0.2 * (1.0 - u)
            for c in range(3):
                color = cavity[c] * shade
                color = color * (1.0 - tongue) + tongue_rgb[c] * tongue_light * tongue
                color = color * (1.0 - teeth) + teeth_rgb[c] * teeth_light * teeth
                value = np.float64(region[i, j, c]) * (1.0 - a) + color * a + 0.5
                region[i, j, c] = np.uint8(0.0 if value < 0.0 else (255.0 if value > 255.0 else value))
