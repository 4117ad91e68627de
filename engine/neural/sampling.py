"""Coordinate grids and the volumetric (5-D) sampler, with an export variant built from 2-D samplings.

TensorRT's GridSample layer takes 4-D input only; :func:`grid_sample_3d_by_slices` computes the same trilinear
sample (``align_corners=False``, zero padding) as a 2-D sampling of every depth slice at (x, y), weighted by the
linear z weights ``max(0, 1 - |z_pix - d|)`` and summed over d. That is exact: trilinear interpolation is
linear in z, and zero padding in z is the missing slices contributing nothing.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

Sampler = Literal["native", "slices"]


def coordinate_grid(depth: int, height: int, width: int, dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """Normalized voxel-centre coordinates ``(D, H, W, 3)`` in [-1, 1], last axis (x, y, z) = right, down, in."""
    z = torch.linspace(-1.0, 1.0, depth, dtype=dtype, device=device)
    y = torch.linspace(-1.0, 1.0, height, dtype=dtype, device=device)
    x = torch.linspace(-1.0, 1.0, width, dtype=dtype, device=device)
    zz, yy, xx = torch.meshgrid(z, y, x, indexing="ij")
    return torch.stack([xx, yy, zz], dim=-1)


def grid_sample_3d(volume: torch.Tensor, grid: torch.Tensor, sampler: Sampler = "native") -> torch.Tensor:
    """Trilinear sample of ``volume (N, C, D, H, W)`` at ``grid (N, Do, Ho, Wo, 3)`` (x, y, z in [-1, 1]) →
    ``(N, C, Do, Ho, Wo)``; ``align_corners=False``, zeros outside."""
    if sampler == "native":
        return F.grid_sample(volume, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return grid_sample_3d_by_slices(volume, grid)


def grid_sample_3d_by_slices(volume: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """:func:`grid_sample_3d` from one 4-D ``grid_sample`` over the ``C·D`` slice channels (TensorRT-friendly)."""
    n, c, d, h, w = volume.shape
    do, ho, wo = grid.shape[1], grid.shape[2], grid.shape[3]
    planes = volume.reshape(n, c * d, h, w)
    xy = grid[..., :2].reshape(n, do * ho, wo, 2)
    sampled = F.grid_sample(planes, xy, mode="bilinear", padding_mode="zeros", align_corners=False)
    sampled = sampled.reshape(n, c, d, do, ho, wo)
    z_pix = ((grid[..., 2] + 1.0) * d - 1.0) * 0.5  # (N, Do, Ho, Wo), align_corners=False
    slices = torch.arange(d, dtype=grid.dtype, device=grid.device).reshape(1, d, 1, 1, 1)
    weights = torch.clamp(1.0 - torch.abs(z_pix.unsqueeze(1) - slices), min=0.0)  # (N, D, Do, Ho, Wo)
    return (sampled * weights.unsqueeze(1)).sum(dim=2)
