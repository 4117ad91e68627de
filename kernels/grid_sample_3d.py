"""Volumetric (5-D) trilinear grid sampling on the CPU (NumPy): the twin of ``lp_grid_sample_3d_*``.

Semantics of ``torch.nn.functional.grid_sample(input, grid, mode="bilinear", padding_mode="zeros",
align_corners=False)`` for 5-D input, which the neural renderer uses to warp its feature volume.
"""

from __future__ import annotations

import numpy as np


def check_grid_sample_3d(volume_shape: tuple[int, ...], grid_shape: tuple[int, ...]) -> None:
    """ValueError unless ``volume`` is (N, C, D, H, W) and ``grid`` is (N, Do, Ho, Wo, 3)."""
    if len(volume_shape) != 5 or len(grid_shape) != 5 or grid_shape[4] != 3 or grid_shape[0] != volume_shape[0]:
        raise ValueError(f"expected volume (N, C, D, H, W) and grid (N, Do, Ho, Wo, 3), got {volume_shape} and "
                         f"{grid_shape}")


def grid_sample_3d(volume: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Sample ``volume (N, C, D, H, W) f32`` at ``grid (N, Do, Ho, Wo, 3) f32`` normalized (x, y, z) in
    [-1, 1] (x along W, z along D; pixel centres, ``align_corners=False``); corners outside add zero.
    Returns ``(N, C, Do, Ho, Wo)`` of the volume's dtype (computed in f32)."""
    check_grid_sample_3d(volume.shape, grid.shape)
    n, c, d, h, w = volume.shape
    g = grid.astype(np.float32).reshape(n, -1, 3)
    ix = ((g[..., 0] + 1.0) * w - 1.0) / 2.0  # (N, M) f32
    iy = ((g[..., 1] + 1.0) * h - 1.0) / 2.0
    iz = ((g[..., 2] + 1.0) * d - 1.0) / 2.0
    x0, y0, z0 = np.floor(ix), np.floor(iy), np.floor(iz)
    wx = (x0 + 1.0 - ix, ix - x0)
    wy = (y0 + 1.0 - iy, iy - y0)
    wz = (z0 + 1.0 - iz, iz - z0)
    flat = volume.astype(np.float32, copy=False).reshape(n, c, d * h * w)
    out = np.zeros((n, c, g.shape[1]), dtype=np.float32)
    for k in range(8):  # corners in torch's order: tnw, tne, tsw, tse, bnw, bne, bsw, bse
        dx, dy, dz = k & 1, (k >> 1) & 1, k >> 2
        xx, yy, zz = x0 + dx, y0 + dy, z0 + dz
        inside = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h) & (zz >= 0) & (zz < d)
        weight = np.where(inside, wx[dx] * wy[dy] * wz[dz], 0.0).astype(np.float32)
        idx = np.where(inside, (zz * h + yy) * w + xx, 0).astype(np.int64)
        for b in range(n):
            out[b] += flat[b][:, idx[b]] * weight[b]
    return out.reshape(n, c, *grid.shape[1:4]).astype(volume.dtype, copy=False)
