"""The mesh warp compiled for the CPU by Numba: the GPU kernels' algorithm, exact at full resolution.

The OpenCV twin (:mod:`livepuppet.kernels.mesh_warp`) rasterizes triangle ids with one ``fillConvexPoly`` call
per triangle from Python, on a coarse grid, then upsamples the map and refines lids and lips; at a 512² crop
that is most of a frame's CPU. This module computes what the CUDA source does (``lp_triangle_affines``,
``lp_raster_ranks``, ``lp_map_from_ranks``) in compiled loops: per-triangle affines from cofactors, painter's
order rasterization with the same edge rule (shared edges evaluated from the lower vertex index, so no pixel
falls between two triangles) and the exact full-resolution map, drawn in one pass with the rasterization (each
row's run from the edges' crossings; the exact edge test only where a pixel lies within rounding of an edge);
the sampling is OpenCV's remap, which
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
def _exact_run(v0: int, x0: float, y0: float, v1: int, x1: float, y1: float, v2: int, x2: float, y2: float,
               sgn: float, bx0: int, bx1: int, fy: float) -> tuple[int, int]:
    """The pixels ``lo..hi`` of row ``fy`` that pass :func:`_inside` (``lo > hi``: none), within ``bx0..bx1``."""
    lo, hi = bx0, bx1
    # Narrow the row to where the edge functions allow (one pixel of slack each side for rounding); the
    # exact test below decides the pixels at the ends.
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
    # Along a row each edge function is monotone in x, and so is its floating-point evaluation: the pixels
    # inside form one run. Its two ends are found with the exact test, the rest is filled.
    while lo <= hi and not _inside(v0, x0, y0, v1, x1, y1, v2, x2, y2, sgn, np.float64(lo), fy):
        lo += 1
    while hi > lo and not _inside(v0, x0, y0, v1, x1, y1, v2, x2, y2, sgn, np.float64(hi), fy):
        hi -= 1
    return lo, hi


@cpu_kernel
def _raster_map(dst: np.ndarray, tris: np.ndarray, order: np.ndarray, aff: np.ndarray, map_xy: np.ndarray) -> None:
    """The backward map ``map_xy (h, w, 2) f32`` (x, y per pixel) drawn triangle by triangle, in one pass:
    ``lp_raster_ranks`` (triangles in ``order``, later ones on top; pixel (i, j) is the target point (j, i);
    edges inclusive) and ``lp_map_from_ranks`` (each pixel's source position from its triangle's affine, f32
    products and sums in the GPU's order). Pixels no triangle covers must hold the identity on entry.

    Each row's run comes from the edges' crossings, computed per triangle as lines in y. The exact test
    (:func:`_exact_run`) runs only for a row where an end pixel lies so near an edge that rounding could
    decide it: elsewhere the edge functions' signs are certain, their rounding error being many orders
    of magnitude below the margin required."""
    h, w = map_xy.shape[0], map_xy.shape[1]
    c0 = np.empty(3)  # per edge: the signed edge function at (x, y) is c0 + c1 y + s x (inside: >= 0)
    c1 = np.empty(3)
    sl = np.empty(3)
    r0 = np.empty(3)
    r1 = np.empty(3)
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
        big = max(abs(lx), abs(hx), abs(ly), abs(hy), float(w), float(h), 1.0)
        eps = 1e-9 * big * big  # rounding of the edge functions is below 1e-15 big²
        for k in range(3):
            ax, ay, bx, by = ((x1, y1, x2, y2) if k == 0 else ((x2, y2, x0, y0) if k == 1 else (x0, y0, x1, y1)))
            c0[k] = sgn * ((by - ay) * ax - (bx - ax) * ay)
            c1[k] = sgn * (bx - ax)
            sl[k] = -(by - ay) * sgn
            if abs(sl[k]) > 1e-6:  # the edge crosses row y at x = r0 + r1 y
                r0[k], r1[k] = -c0[k] / sl[k], -c1[k] / sl[k]
        for py in range(by0, by1 + 1):
            fy = np.float64(py)
            flo, fhi = np.float64(bx0), np.float64(bx1)
            for k in range(3):
                if sl[k] > 1e-6:
                    flo = max(flo, r0[k] + r1[k] * fy)
                elif sl[k] < -1e-6:
                    fhi = min(fhi, r0[k] + r1[k] * fy)
            lo, hi = int(np.ceil(flo)), int(np.floor(fhi))
            # Certain when the end pixels are inside every edge and their outer neighbours outside one (or
            # outside the box), by the margin; an empty row needs only the latter.
            sure, out_lo, out_hi = True, lo == bx0, hi == bx1
            for k in range(3):
                base = c0[k] + c1[k] * fy
                if lo <= hi and (base + sl[k] * lo <= eps or base + sl[k] * hi <= eps):
                    sure = False
                if base + sl[k] * (lo - 1) < -eps:
                    out_lo = True
                if base + sl[k] * (hi + 1) < -eps:
                    out_hi = True
            sure = sure and out_lo and out_hi
            if not sure:
                lo, hi = _exact_run(v0, x0, y0, v1, x1, y1, v2, x2, y2, sgn, bx0, bx1, fy)
            a0, a1, a2, a3, a4, a5 = aff[t, 0], aff[t, 1], aff[t, 2], aff[t, 3], aff[t, 4], aff[t, 5]
            gy = np.float32(py)
            bxr = a1 * gy  # (the products' order is the GPU's: (a0 x + a1 y) + a2)
            byr = a4 * gy
            row = map_xy[py]
            for px in range(lo, hi + 1):  # (a narrowed hi may be negative: never a slice from the end)
                gx = np.float32(px)
                row[px, 0] = (a0 * gx + bxr) + a2
                row[px, 1] = (a3 * gx + byr) + a5


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
        self._identity = np.ascontiguousarray(np.mgrid[0:h, 0:w][::-1].transpose(1, 2, 0), dtype=np.float32)
        self._map = np.empty((h, w, 2), dtype=np.float32)

    def affines(self, dst: np.ndarray) -> np.ndarray:
        """The per-triangle affines ``(T, 6) f32`` for target points ``dst (P, 2)`` (a scratch view)."""
        _affines(self._src, np.ascontiguousarray(dst, dtype=np.float32), self._tris, self._aff)
        return self._aff

    def backward_map(self, dst: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The exact full-resolution backward map ``(map_x, map_y)``, each ``(S, S) f32`` (scratch views),
        for target points ``dst (P, 2)`` with triangles drawn in ``order (K,)``, back to front."""
        self._draw(dst, order)
        return self._map[..., 0], self._map[..., 1]

    @property
    def map_xy(self) -> np.ndarray:
        """The last drawn interleaved backward map ``(S, S, 2) f32`` (the scratch: valid until the next draw)."""
        return self._map

    def warp(self, dst: np.ndarray, order: np.ndarray) -> np.ndarray:
        """The crop warped from the source points to ``dst``, triangles drawn in ``order`` (a new array)."""
        self._draw(dst, order)
        return remap_bilinear(self._crop, self._map)

    def _draw(self, dst: np.ndarray, order: np.ndarray) -> None:
        """The affines and the interleaved map (x, y per pixel) for ``dst`` and ``order``, in the scratch."""
        dst32 = np.ascontiguousarray(dst, dtype=np.float32)
        _affines(self._src, dst32, self._tris, self._aff)
        np.copyto(self._map, self._identity)
        _raster_map(dst32, self._tris, np.ascontiguousarray(order, dtype=np.int32), self._aff, self._map)


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
