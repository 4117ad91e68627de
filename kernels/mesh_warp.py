"""Piecewise-affine mesh warp on the CPU (NumPy/OpenCV): the twin of the GPU kernels.

A triangle mesh moves from source positions to target positions; for every output pixel we need the
source position to sample (a *backward* map). Per target triangle the map is affine, so we rasterize
triangle ids once on a coarse grid (``map_scale``), evaluate each node's affine, and upsample the map
(continuous and piecewise linear almost everywhere) before one bilinear remap of the image. Regions
where the map jumps (closed lids and lips) are recomputed exactly by :func:`refine_map`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np

_SUBPIXEL_BITS = 4


def triangle_affines(src: np.ndarray, dst: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Per-triangle affine maps from target to source coordinates.

    ``src``, ``dst``: (P, 2) f32 vertex positions; ``tris``: (T, 3) int vertex indices.
    Returns (T, 6) f32 ``[a, b, c, d, e, f]`` with ``src = (a x + b y + c, d x + e y + f)`` for a
    target point ``(x, y)``. Degenerate target triangles (no area, so no pixels) get a translation.
    """
    d = dst[tris].astype(np.float64)  # (T, 3, 2)
    s = src[tris].astype(np.float64)
    m = np.concatenate([d, np.ones((len(tris), 3, 1))], axis=2)  # (T, 3, 3): rows [x y 1]
    det = np.linalg.det(m)
    ok = np.abs(det) > 1e-9
    coef = np.zeros((len(tris), 3, 2))
    if np.any(ok):
        coef[ok] = np.linalg.solve(m[ok], s[ok])  # (3, 2): columns are x and y coefficients
    out = np.empty((len(tris), 6), dtype=np.float32)
    out[:, 0:3] = coef[:, :, 0]
    out[:, 3:6] = coef[:, :, 1]
    bad = ~ok
    if np.any(bad):
        shift = (s[bad] - d[bad]).mean(axis=1)
        out[bad] = 0.0
        out[bad, 0] = 1.0
        out[bad, 2] = shift[:, 0]
        out[bad, 4] = 1.0
        out[bad, 5] = shift[:, 1]
    return out


def rasterize_ids(dst: np.ndarray, tris: np.ndarray, shape: tuple[int, int], scale: float | tuple[float, float],
                  order: np.ndarray | None = None) -> np.ndarray:
    """Triangle id at every pixel of a ``shape`` (h, w) grid whose pixel (i, j) stands for the target
    point ``(j / sx, i / sy)`` (``scale`` = sx = sy, or (sx, sy)); -1 where no triangle covers it.
    Returns (h, w) int32.

    Triangles are drawn in ``order`` (painter's algorithm: pass them back to front, leaving out the
    back-facing ones, and nearer triangles hide farther ones); by default all, in index order."""
    ids = np.full(shape, -1, dtype=np.int32)
    sx, sy = (scale, scale) if isinstance(scale, (int, float)) else scale
    pts = dst.astype(np.float64) * np.array([sx, sy]) * (1 << _SUBPIXEL_BITS)
    polys = np.round(pts[tris]).astype(np.int32)  # (T, 3, 2)
    for t in (range(len(tris)) if order is None else order.tolist()):
        cv2.fillConvexPoly(ids, polys[t], t, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
    return ids


def backward_map(src: np.ndarray, dst: np.ndarray, tris: np.ndarray, size: tuple[int, int],
                 map_scale: float = 0.5, order: np.ndarray | None = None,
                 affines: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Dense backward map for a ``size`` (h, w) output: (map_x, map_y), each (h, w) f32 source pixel
    coordinates. Pixels outside the drawn triangles map to themselves; ``order`` as in
    :func:`rasterize_ids`; ``affines`` from :func:`triangle_affines` if already computed."""
    h, w = size
    ch, cw = max(2, round(h * map_scale)), max(2, round(w * map_scale))
    # Coarse grid nodes sit on target pixels 0 … w-1 exactly (corners aligned), so upsampling them is
    # exact for any affine map, the image border included.
    kx, ky = (w - 1) / (cw - 1), (h - 1) / (ch - 1)
    ids = rasterize_ids(dst, tris, (ch, cw), (1.0 / kx, 1.0 / ky), order)
    aff = triangle_affines(src, dst, tris) if affines is None else affines
    gx, gy = np.meshgrid(np.arange(cw, dtype=np.float32) * kx, np.arange(ch, dtype=np.float32) * ky)
    flat = ids.ravel()
    inside = flat >= 0
    idx = np.where(inside, flat, 0)
    px, py = gx.ravel(), gy.ravel()
    mx = np.take(aff[:, 0], idx) * px + np.take(aff[:, 1], idx) * py + np.take(aff[:, 2], idx)
    my = np.take(aff[:, 3], idx) * px + np.take(aff[:, 4], idx) * py + np.take(aff[:, 5], idx)
    mx = np.where(inside, mx, px).reshape(ch, cw).astype(np.float32)
    my = np.where(inside, my, py).reshape(ch, cw).astype(np.float32)
    if (ch, cw) == (h, w):
        return mx, my
    ux, uy = _upsampling_grid((ch, cw), (h, w))
    both = cv2.remap(np.dstack([mx, my]), ux, uy, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(both[..., 0]), np.ascontiguousarray(both[..., 1])


@lru_cache(maxsize=16)
def _upsampling_grid(coarse: tuple[int, int], size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Sampling positions in a corner-aligned coarse grid for every pixel of ``size``."""
    (ch, cw), (h, w) = coarse, size
    xs = np.arange(w, dtype=np.float32) * ((cw - 1) / (w - 1))
    ys = np.arange(h, dtype=np.float32) * ((ch - 1) / (h - 1))
    ux, uy = np.meshgrid(xs, ys)
    return ux, uy


def refine_map(map_x: np.ndarray, map_y: np.ndarray, dst: np.ndarray, tris: np.ndarray, affines: np.ndarray,
               order: np.ndarray, boxes: Sequence[tuple[int, int, int, int]]) -> None:
    """In place: recompute the map exactly, at full resolution, inside each of ``boxes`` (x0, y0, x1, y1).

    The upsampled map blurs across discontinuities (closed lids and lips, where neighbouring pixels come
    from far-apart source points) and would sample the eye or mouth interior there; these small regions
    get the exact per-pixel affine (``affines`` from :func:`triangle_affines`) instead. Only triangles
    touching a box are rasterized for it."""
    h, w = map_x.shape
    p = dst[tris]
    lo, hi = p.min(axis=1), p.max(axis=1)
    for box in boxes:
        x0, y0, x1, y1 = max(box[0], 0), max(box[1], 0), min(box[2], w), min(box[3], h)
        if x1 <= x0 or y1 <= y0:
            continue
        touching = (hi[:, 0] >= x0 - 1) & (lo[:, 0] <= x1) & (hi[:, 1] >= y0 - 1) & (lo[:, 1] <= y1)
        sub_order = order[touching[order]]
        if len(sub_order) == 0:
            continue
        shifted = dst - np.array([x0, y0], dtype=dst.dtype)
        ids = rasterize_ids(shifted, tris, (y1 - y0, x1 - x0), 1.0, sub_order)
        ys, xs = np.nonzero(ids >= 0)
        t = ids[ys, xs]
        px, py = (xs + x0).astype(np.float32), (ys + y0).astype(np.float32)
        map_x[ys + y0, xs + x0] = affines[t, 0] * px + affines[t, 1] * py + affines[t, 2]
        map_y[ys + y0, xs + x0] = affines[t, 3] * px + affines[t, 4] * py + affines[t, 5]


def remap_bilinear(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray | None = None) -> np.ndarray:
    """Sample ``image`` (H, W, C) u8|f32 at (map_x, map_y) (h, w) f32 with bilinear filtering, positions
    rounded to 1/32 pixel; outside samples replicate the border. ``map_y`` None: ``map_x`` is the interleaved
    map (h, w, 2). Returns (h, w, C) of the image's dtype."""
    # (OpenCV takes no second map with an interleaved one; its type stubs insist on one.)
    fixed, frac = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)  # type: ignore[arg-type]
    return cv2.remap(image, fixed, frac, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def signed_areas(points: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Twice the signed area of each triangle (T,)."""
    p = points[tris].astype(np.float64)
    return (p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1]) - (p[:, 2, 0] - p[:, 0, 0]) * (p[:, 1, 1] - p[:, 0, 1])
