"""Batched bilinear remap on the CPU (OpenCV): the twin of ``lp_remap_u8`` / ``lp_remap_f32``."""

from __future__ import annotations

import numpy as np
from livepuppet.kernels.mesh_warp import remap_bilinear


def check_remap(images_shape: tuple[int, ...], maps_shape: tuple[int, ...], dtype: np.dtype) -> tuple[int, bool]:
    """Batch size and whether the input was batched, or a ValueError naming the expected shapes."""
    if dtype not in (np.uint8, np.float32):
        raise ValueError(f"remap samples uint8 or float32 images, not {dtype}")
    batched = len(images_shape) == 4
    if len(images_shape) not in (3, 4) or len(maps_shape) not in (2, 3):
        raise ValueError(f"expected images (H, W, C) or (B, H, W, C) and maps (h, w) or (B, h, w), got "
                         f"{images_shape} and {maps_shape}")
    b_img = images_shape[0] if batched else 1
    b_map = maps_shape[0] if len(maps_shape) == 3 else 1
    if b_img != b_map and 1 not in (b_img, b_map):
        raise ValueError(f"batch sizes differ: images {b_img}, maps {b_map}")
    return max(b_img, b_map), batched or len(maps_shape) == 3


def remap_batch(images: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """Bilinear sampling with replicated border, exactly :func:`remap_bilinear` per item.

    ``images`` (B, H, W, C) or (H, W, C) u8|f32; ``map_x``, ``map_y`` (B, h, w) or (h, w) f32 source pixel
    coordinates (a batch of 1 on either side is shared). Returns (B, h, w, C), or (h, w, C) when neither
    input is batched."""
    n, batched = check_remap(images.shape, map_x.shape, images.dtype)
    imgs = images if images.ndim == 4 else images[None]
    mx = map_x if map_x.ndim == 3 else map_x[None]
    my = map_y if map_y.ndim == 3 else map_y[None]
    out = np.empty((n, *mx.shape[1:], imgs.shape[3]), dtype=images.dtype)
    for b in range(n):
        img = imgs[b if len(imgs) > 1 else 0]
        j = b if len(mx) > 1 else 0
        out[b] = remap_bilinear(img, mx[j], my[j]).reshape(out.shape[1:])
    return out if batched else out[0]
