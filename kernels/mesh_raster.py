"""Mesh → dense backward map → warped image, the whole mesh-render step, on the CPU (OpenCV/NumPy).

The CPU twin of the GPU path (``lp_triangle_affines`` → ``lp_raster_ranks`` → ``lp_mesh_remap_u8``):
it wraps :mod:`livepuppet.kernels.mesh_warp` (coarse map, exact refinement inside ``boxes``, bilinear
remap) without changing it. The GPU computes the exact map at full resolution in one pass, so it needs
neither ``map_scale`` nor ``boxes``; it accepts them for the same signature.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from livepuppet.kernels.mesh_warp import backward_map, refine_map, remap_bilinear, triangle_affines

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1) target pixels, end exclusive


def mesh_backward_map(src: np.ndarray, dst: np.ndarray, tris: np.ndarray, size: tuple[int, int],
                      order: np.ndarray, map_scale: float = 1.0,
                      boxes: Sequence[Box] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Backward map ``(map_x, map_y)``, each ``(h, w) f32`` source pixel coordinates, for the mesh moving
    from ``src`` to ``dst`` ``(P, 2) f32``; triangles ``tris (T, 3) int`` drawn in ``order (K,) int``
    (painter's order, back to front). Below ``map_scale`` 1 the map is upsampled from a coarse grid and
    recomputed exactly inside ``boxes``; undrawn pixels map to themselves."""
    affines = triangle_affines(src, dst, tris)
    map_x, map_y = backward_map(src, dst, tris, size, map_scale, order, affines)
    if map_scale < 1.0 and len(boxes):
        refine_map(map_x, map_y, dst, tris, affines, order, boxes)
    return map_x, map_y


def mesh_warp(images: np.ndarray, src: np.ndarray, dst: np.ndarray, tris: np.ndarray, order: np.ndarray,
              map_scale: float = 1.0, boxes: Sequence[Sequence[Box]] | None = None) -> np.ndarray:
    """Warp ``images (B, H, W, C) u8`` (or one ``(H, W, C)``) by their meshes: ``src (P, 2)`` or
    ``(B, P, 2)``, ``dst (B, P, 2)`` or ``(P, 2)`` f32, ``order (B, K)`` or ``(K,)`` int; ``boxes`` per item.
    Returns ``(B, H, W, C) u8`` (``(H, W, C)`` for one unbatched image)."""
    batched = images.ndim == 4 or dst.ndim == 3
    imgs = images if images.ndim == 4 else images[None]
    dsts = dst if dst.ndim == 3 else dst[None]
    srcs = src if src.ndim == 3 else src[None]
    orders = order if order.ndim == 2 else order[None]
    n = max(len(imgs), len(dsts))
    h, w = imgs.shape[1:3]
    out = np.empty((n, h, w, imgs.shape[3]), dtype=imgs.dtype)
    for b in range(n):
        item_boxes = boxes[b] if boxes is not None else ()
        mx, my = mesh_backward_map(_item(srcs, b), _item(dsts, b), tris, (h, w), _item(orders, b), map_scale,
                                   item_boxes)
        out[b] = remap_bilinear(_item(imgs, b), mx, my).reshape(out.shape[1:])
    return out if batched else out[0]


def _item(batch: np.ndarray, b: int) -> np.ndarray:
    """Item ``b`` of a batch; a batch of one is shared by every item."""
    return batch[b if len(batch) > 1 else 0]
