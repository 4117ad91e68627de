"""The mesh warp compiled for the CPU by Numba: the GPU kernels' algorithm, exact at full resolution.

The OpenCV twin (:mod:`livepuppet.kernels.mesh_warp`) rasterizes triangle ids with one ``fillConvexPoly`` call
per triangle from Python, on a coarse grid, then upsamples the map and refines lids and lips; at a 512² crop
that is most of a frame's CPU. This module computes what the CUDA source does (``lp_triangle_affines``,
``lp_raster_ranks``, ``lp_map_from_ranks``) in compiled loops: per-triangle affines from cofactors, painter's
order rasterization with the same edge rule (shared edges evaluated from the lower vertex index, so no pixel
falls between two triangles) and the exact full-resolution map; the sampling is OpenCV's remap, which
``lp_mesh_remap_u8`` reproduces (1/32-pixel positions, 15-bit weights). The compiled functions release the
GIL, so engine threads render in parallel.

Numba is optional at import: :func:`available` says whether the compiled path can be used.
"""

from __future__ import annotations

import time

import numpy as np
from livepuppet.errors import DependencyError
from livepuppet.kernels.jit import available as available  # re-exported: whether the compiled warp can be used
from livepuppet.kernels.jit import cpu_kernel
from livepuppet.kernels.mesh_warp import remap_bilinear


def use_jit_warp(choice: str) -> bool:
    """Whether ``render.cpu_warp`` = ``choice`` ("auto", "jit", "opencv") selects the compiled warp; "jit"
    without Numba is a DependencyError naming the fix."""
    if choice == "jit" and not available():
        raise DependencyError('render.cpu_warp = "jit" needs numba: pip install numba (or choose "opencv")')
    return choice == "jit" or (choice == "auto" and available())


@cpu_kernel
def _affines(src: np.ndarray, dst: np.ndarray, tris: np.ndarray, out: np.ndarray) -> None:
    """(T, 6) f32 target→source affines, the twin of ``lp_triangle_affines`` (degenerate → mean shift)."""
    for t in range(tris.shape[0]):
        v0, v1, v2 = tris[t, 0], tris[t, 1], tris[t, 2]
        x0, y0 = np.float64(dst[v0, 0]), np.float64(dst[v0, 1])
        x1, y1 = np.float64(dst[v1, 0]), np.float64(dst[v1, 1])
        x2, y2 = np.float64(dst[v2, 0]), np.float64(dst[v2, 1])
        sx0, sy0 = np.float64(src[v0, 0]), np.float64(src[v0, 1])
        sx1, sy1 = np.float64(src[v1, 0]), np.float64(src[v1, 1])
        sx2, sy2 = np.float64(src[v2, 0]), np.float64(src[v2, 1])
        c00, c01, c02 = y1 - y2, x2 - x1, x1 * y2 - x2 * y1
        c10, c11, c12 = y2 - y0, x0 - x2, x2 * y0 - x0 * y2
        c20, c21, c22 = y0 - y1, x1 - x0, x0 * y1 - x1 * y0
        det = x0 * c00 + y0 * c01 + c02
        if abs(det) > 1e-9:
            out[t, 0] = (c00 * sx0 + c10 * sx1 + c20 * sx2) / det
            out[t, 1] = (c01 * sx0 + c11 * sx1 + c21 * sx2) / det
            out[t, 2] = (c02 * sx0 + c12 * sx1 + c22 * sx2) / det
            out[t, 3] = (c00 * sy0 + c10 * sy1 + c20 * sy2) / det
            out[t, 4] = (c01 * sy0 + c11 * sy1 + c21 * sy2) / det
            out[t, 5] = (c02 * sy0 + c12 * sy1 + c22 * sy2) / det
        else:
            out[t, 0] = 1.0
            out[t, 1] = 0.0
            out[t, 2] = ((sx0 - x0) + (sx1 - x1) + (sx2 - x2)) / 3.0
            out[t, 3] = 0.0
            out[t, 4] = 1.0
            out[t, 5] = ((sy0 - y0) + (sy1 - y1) + (sy2 - y2)) / 3.0


@cpu_kernel
def _edge(ia: int, ax: float, ay: float, ib: int, bx: float, by: float, px: float, py: float) -> float:
    """``lp_edge``: the edge function of p against (a, b), from the endpoint with the lower vertex index."""
    if ia < ib:
        return (bx - ax) * (py - ay) - (by - ay) * (px - ax)
    return -((ax - bx) * (py - by) - (ay - by) * (px - bx))


@cpu_kernel
def _inside(v0: int, x0: float, y0: float, v1: int, x1: float, y1: float, v2: int, x2: float, y2: float,
            sgn: float, px: float, py: float) -> bool:
    """Whether p is inside the triangle or on its edges (``lp_raster_ranks``' test)."""
    return (_edge(v1, x1, y1, v2, x2, y2, px, py) * sgn >= 0.0
            and _edge(v2, x2, y2, v0, x0, y0, px, py) * sgn >= 0.0
            and _edge(v0, x0, y0, v1, x1, y1, px, py) * sgn >= 0.0)


@cpu_kernel
def _raster(dst: np.ndarray, tris: np.ndarray, order: np.ndarray, owner: np.ndarray) -> None:
    """Triangle id per pixel of ``owner (h, w) i32`` (-1 where none): triangles drawn in ``order``, later
    ones on top; pixel (i, j) is the target point (j, i); edges inclusive (``lp_raster_ranks``)."""
    h, w = owner.shape
    owner[:, :] = -1
    for r in range(order.shape[0]):
        t = order[r]
        v0, v1, v2 = tris[t, 0], tris[t, 1], tris[t, 2]
        x0, y0 = np.float64(dst[v0, 0]), np.float64(dst[v0, 1])
        x1, y1 = np.float64(dst[v1, 0]), np.float64(dst[v1, 1])
        x2, y2 = np.float64(dst[v2, 0]), np.float64(dst[v2, 1])
        area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
        if area == 0.0:
            continue
        sgn = 1.0 if area > 0.0 else -1.0
        lx, hx = min(x0, x1, x2), max(x0, x1, x2)
        ly, hy = min(y0, y1, y2), max(y0, y1, y2)
        if hx < 0.0 or hy < 0.0 or lx > w - 1 or ly > h - 1:
            continue
        bx0, bx1 = int(np.ceil(max(lx, 0.0))), int(np.floor(min(hx, w - 1.0)))
        by0, by1 = int(np.ceil(max(ly, 0.0))), int(np.floor(min(hy, h - 1.0)))
        for py in range(by0, by1 + 1):
            fy = np.float64(py)
            lo, hi = bx0, bx1
            # Narrow the row to where the edge functions allow (one pixel of slack each side for rounding);
            # the exact test below decides the pixels at the ends.
            for k in range(3):
                ia, ib = (v1, v2) if k == 0 else ((v2, v0) if k == 1 else (v0, v1))
                ax, ay, bx, by = ((x1, y1, x2, y2) if k == 0 else ((x2, y2, x0, y0) if k == 1 else (x0, y0, x1, y1)))
                slope = -(by - ay) * sgn
                if abs(slope) > 1e-6:
                    root = -_edge(ia, ax, ay, ib, bx, by, 0.0, fy) * sgn / slope
                    if slope > 0.0:
                        lo = max(lo, int(np.ceil(root)) - 1)
                    else:
                        hi = min(hi, int(np.floor(root)) + 1)
            # Along a row each edge function is monotone in x, and so is its floating-point evaluation: the
            # pixels inside form one run. Its two ends are found with the exact test, the rest is filled.
            while lo <= hi and not _inside(v0, x0, y0, v1, x1, y1, v2, x2, y2, sgn, np.float64(lo), fy):
                lo += 1
            while hi > lo and not _inside(v0, x0, y0, v1, x1, y1, v2, x2, y2, sgn, np.float64(hi), fy):
                hi -= 1
            if lo <= hi:  # (a narrowed hi may be negative: never a slice from the end)
                owner[py, lo:hi + 1] = t


@cpu_kernel
def _map(owner: np.ndarray, aff: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> None:
    """``lp_map_from_ranks`` at full resolution: each pixel's source position from its owner's affine, in
    f32 with the products and sums in the GPU's order; identity where no triangle was drawn."""
    h, w = owner.shape
    for py in range(h):
        fy = np.float32(py)
        for px in range(w):
            fx = np.float32(px)
            t = owner[py, px]
            if t < 0:
                map_x[py, px] = fx
                map_y[py, px] = fy
            else:
                map_x[py, px] = (aff[t, 0] * fx + aff[t, 1] * fy) + aff[t, 2]
                map_y[py, px] = (aff[t, 3] * fx + aff[t, 4] * fy) + aff[t, 5]


class JitMeshWarp:
    """One portrait's compiled warp: ``warp(dst, order)`` → the warped crop ``(S, S, C) u8`` (a new array).
    Holds its scratch buffers; one per renderer, not thread-safe (different instances run in parallel)."""

    def __init__(self, crop: np.ndarray, src_points: np.ndarray, tris: np.ndarray) -> None:
        use_jit_warp("jit")
        self._crop = np.ascontiguousarray(crop, dtype=np.uint8)
        self._src = np.ascontiguousarray(src_points, dtype=np.float32)
        self._tris = np.ascontiguousarray(tris, dtype=np.int32)
        self._aff = np.empty((len(tris), 6), dtype=np.float32)
        h, w = crop.shape[:2]
        self._owner = np.empty((h, w), dtype=np.int32)
        self._map_x = np.empty((h, w), dtype=np.float32)
        self._map_y = np.empty((h, w), dtype=np.float32)

    def affines(self, dst: np.ndarray) -> np.ndarray:
        """The per-triangle affines ``(T, 6) f32`` for target points ``dst (P, 2)`` (a scratch view)."""
        _affines(self._src, np.ascontiguousarray(dst, dtype=np.float32), self._tris, self._aff)
        return self._aff

    def backward_map(self, dst: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The exact full-resolution backward map ``(map_x, map_y)``, each ``(S, S) f32`` (scratch views),
        for target points ``dst (P, 2)`` with triangles drawn in ``order (K,)``, back to front."""
        dst32 = np.ascontiguousarray(dst, dtype=np.float32)
        _affines(self._src, dst32, self._tris, self._aff)
        _raster(dst32, self._tris, np.ascontiguousarray(order, dtype=np.int32), self._owner)
        _map(self._owner, self._aff, self._map_x, self._map_y)
        return self._map_x, self._map_y

    def warp(self, dst: np.ndarray, order: np.ndarray) -> np.ndarray:
        """The crop warped from the source points to ``dst``, triangles drawn in ``order`` (a new array)."""
        map_x, map_y = self.backward_map(dst, order)
        return remap_bilinear(self._crop, map_x, map_y)


def warm_up() -> float:
    """Compile (or load from Numba's cache) every kernel now, on a tiny mesh, so a session's first frame does
    not wait for it; returns the seconds it took. A no-op without Numba."""
    if not available():
        return 0.0
    start = time.perf_counter()
    src = np.array([[0, 0], [7, 0], [0, 7], [7, 7]], dtype=np.float32)
    tris = np.array([[0, 1, 2], [1, 3, 2]], dtype=np.int32)
    JitMeshWarp(np.zeros((8, 8, 3), dtype=np.uint8), src, tris).warp(src + np.float32(0.5), np.arange(2))
    return time.perf_counter() - start
