"""Piecewise-affine mesh warp on the CPU (NumPy/OpenCV): the twin of the GPU kernels.

A triangle mesh moves from source positions to target positions; for every output pixel we need the
source position to sample (a *backward* map). Per target triangle the map is affine, so we rasterize
triangle ids once at ``map_scale`` resolution, evaluate each pixel's affine, and upsample the map
(it is continuous, piecewise linear) before one bilinear remap of the image.
"""

from __future__ import annotations

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


def rasterize_ids(dst: np.ndarray, tris: np.ndarray, shape: tuple[int, int], scale: float,
                  order: np.ndarray | None = None) -> np.ndarray:
    """Triangle id of every pixel of a ``shape`` (h, w) grid whose pixel (i, j) samples target point
    ``((j + 0.5) / scale - 0.5, ...)``; -1 where no triangle covers it. Returns (h, w) int32.

    Triangles are drawn in ``order`` (painter's algorithm: pass them back to front, leaving out the
    back-facing ones, and nearer triangles hide farther ones); by default all, in index order."""
    ids = np.full(shape, -1, dtype=np.int32)
    # Pixel centers of the coarse grid map to target coords via x_t = (x_c + 0.5) / scale - 0.5.
    pts = ((dst.astype(np.float64) + 0.5) * scale - 0.5) * (1 << _SUBPIXEL_BITS)
    polys = np.round(pts[tris]).astype(np.int32)  # (T, 3, 2)
    for t in (range(len(tris)) if order is None else order.tolist()):
        cv2.fillConvexPoly(ids, polys[t], t, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
    return ids


def backward_map(src: np.ndarray, dst: np.ndarray, tris: np.ndarray, size: tuple[int, int],
                 map_scale: float = 0.5, order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Dense backward map for a ``size`` (h, w) output: (map_x, map_y), each (h, w) f32 source pixel
    coordinates. Pixels outside the drawn triangles map to themselves; ``order`` as in
    :func:`rasterize_ids`."""
    h, w = size
    ch, cw = max(2, round(h * map_scale)), max(2, round(w * map_scale))
    sy, sx = ch / h, cw / w
    scale = 0.5 * (sx + sy)
    ids = rasterize_ids(dst, tris, (ch, cw), scale, order)
    aff = triangle_affines(src, dst, tris)
    # Target coordinates of the coarse pixel centers.
    ys = (np.arange(ch, dtype=np.float32) + 0.5) / sy - 0.5
    xs = (np.arange(cw, dtype=np.float32) + 0.5) / sx - 0.5
    gx, gy = np.meshgrid(xs, ys)
    flat = ids.ravel()
    inside = flat >= 0
    idx = np.where(inside, flat, 0)
    px, py = gx.ravel(), gy.ravel()
    mx = np.take(aff[:, 0], idx) * px + np.take(aff[:, 1], idx) * py + np.take(aff[:, 2], idx)
    my = np.take(aff[:, 3], idx) * px + np.take(aff[:, 4], idx) * py + np.take(aff[:, 5], idx)
    mx = np.where(inside, mx, px).reshape(ch, cw)
    my = np.where(inside, my, py).reshape(ch, cw)
    if (ch, cw) != (h, w):
        mx = _upsample_coords(mx, (h, w))
        my = _upsample_coords(my, (h, w))
    return mx.astype(np.float32), my.astype(np.float32)


def _upsample_coords(coarse: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of a coordinate field: the field is continuous, so this is nearly exact."""
    h, w = size
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)


def remap_bilinear(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """Sample ``image`` (H, W, C) u8|f32 at (map_x, map_y) (h, w) f32 with bilinear filtering;
    outside samples replicate the border. Returns (h, w, C) of the image's dtype."""
    fixed, frac = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
    return cv2.remap(image, fixed, frac, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def vertex_adjacency(num_points: int, tris: np.ndarray) -> np.ndarray:
    """Row-normalized vertex adjacency of a triangle mesh as a dense-free sparse CSR matrix (P, P)."""
    from scipy.sparse import coo_matrix

    a, b, c = tris[:, 0], tris[:, 1], tris[:, 2]
    rows = np.concatenate([a, b, b, c, c, a])
    cols = np.concatenate([b, a, c, b, a, c])
    m = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(num_points, num_points)).tocsr()
    m.data[:] = 1.0  # duplicates summed above: an edge counts once
    deg = np.asarray(m.sum(axis=1)).ravel()
    deg[deg == 0] = 1.0
    from scipy.sparse import diags

    return diags(1.0 / deg) @ m


def signed_areas(points: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Twice the signed area of each triangle (T,)."""
    p = points[tris].astype(np.float64)
    return (p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1]) - (p[:, 2, 0] - p[:, 0, 0]) * (p[:, 1, 1] - p[:, 0, 1])


def unfold(src: np.ndarray, dst: np.ndarray, tris: np.ndarray, adjacency: np.ndarray, movable: np.ndarray,
           iterations: int = 12) -> np.ndarray:
    """Remove fold-overs: where a target triangle flipped (a 2-D warp cannot occlude), smooth the
    displacement of its vertices towards their neighbors' until it unflips. Returns new (P, 2) f32."""
    out = dst.astype(np.float64, copy=True)
    src64 = src.astype(np.float64)
    orient = np.sign(signed_areas(src64, tris))
    for _ in range(iterations):
        flipped = signed_areas(out, tris) * orient <= 0.0
        if not np.any(flipped):
            break
        verts = np.unique(tris[flipped])
        verts = verts[movable[verts]]
        if len(verts) == 0:
            break
        disp = out - src64
        mean = adjacency @ disp
        out[verts] = src64[verts] + 0.3 * disp[verts] + 0.7 * mean[verts]
    return out.astype(np.float32)
