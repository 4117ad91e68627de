"""Warping module W: dense motion from the keypoints (3-D hourglass → per-keypoint masks and an occlusion
map), the volumetric warp of the source features, and their projection to a 2-D feature map.

The identity coordinate grid is a non-persistent buffer made once (it follows ``.to(device, dtype)``), so a
forward creates no tensors on the host: it can be captured in a CUDA graph. ``rebuild_helpers = True``
restores the published code's per-call CPU grid (used only by the benchmark's "eager plain" variant).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from livepuppet.engine.neural.arch import WarpingParams
from livepuppet.engine.neural.layers import Hourglass, SameBlock2d
from livepuppet.engine.neural.sampling import Sampler, coordinate_grid, grid_sample_3d
from torch import nn

KP_VARIANCE = 0.01  # Gaussian heat-map variance in normalized units (published value)


@dataclass(frozen=True, slots=True)
class WarpOutput:
    """``occlusion_map (B, 1, H, W)`` [0,1], ``deformation (B, D, H, W, 3)`` sampling grid,
    ``out (B, C, H, W)`` the generator's input feature."""

    occlusion_map: torch.Tensor
    deformation: torch.Tensor
    out: torch.Tensor


class DenseMotionNetwork(nn.Module):
    """Feature volume + keypoints → ``(deformation (B, D, H, W, 3), occlusion (B, 1, H, W))``."""

    identity_grid: torch.Tensor

    def __init__(self, p: WarpingParams, feature_size: tuple[int, int, int] = (16, 64, 64)) -> None:
        super().__init__()
        dm = p.dense_motion_params
        self.num_kp = p.num_kp
        self.hourglass = Hourglass(dm.block_expansion, (p.num_kp + 1) * (dm.compress + 1), dm.num_blocks,
                                   dm.max_features)
        self.mask = nn.Conv3d(self.hourglass.out_filters, p.num_kp + 1, kernel_size=7, padding=3)
        self.compress = nn.Conv3d(p.reshape_channel, dm.compress, kernel_size=1)
        self.norm = nn.BatchNorm3d(dm.compress, affine=True)
        self.estimate_occlusion_map = p.estimate_occlusion_map
        if p.estimate_occlusion_map:
            self.occlusion = nn.Conv2d(self.hourglass.out_filters * dm.reshape_depth, 1, kernel_size=7, padding=3)
        self.sampler: Sampler = "native"
        self.rebuild_helpers = False
        self.register_buffer("identity_grid", coordinate_grid(*feature_size), persistent=False)

    def _grid(self, like: torch.Tensor) -> torch.Tensor:
        d, h, w = like.shape[2:]
        if self.rebuild_helpers:
            return coordinate_grid(d, h, w).to(device=like.device, dtype=like.dtype)
        grid = self.identity_grid
        if tuple(grid.shape[:3]) != (d, h, w):  # other input size: rebuild once, on the device
            grid = coordinate_grid(d, h, w, dtype=like.dtype, device=like.device)
            self.identity_grid = grid
        return grid.to(like.dtype)

    def forward(self, feature: torch.Tensor, kp_driving: torch.Tensor,
                kp_source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        b, _, d, h, w = feature.shape
        k = self.num_kp
        feature = F.relu(self.norm(self.compress(feature)))  # (B, c, D, H, W)
        c = feature.shape[1]
        grid = self._grid(feature)  # (D, H, W, 3)
        ident = grid.reshape(1, 1, d, h, w, 3)
        to_source = ident - kp_driving.reshape(b, k, 1, 1, 1, 3) + kp_source.reshape(b, k, 1, 1, 1, 3)
        sparse = torch.cat([ident.expand(b, 1, d, h, w, 3), to_source], dim=1)  # (B, K+1, D, H, W, 3)
        repeated = feature.unsqueeze(1).expand(b, k + 1, c, d, h, w).reshape(b * (k + 1), c, d, h, w)
        deformed = grid_sample_3d(repeated, sparse.reshape(b * (k + 1), d, h, w, 3), self.sampler)
        deformed = deformed.reshape(b, k + 1, c, d, h, w)
        heat = _gaussian(grid, kp_driving) - _gaussian(grid, kp_source)  # (B, K, D, H, W)
        heat = F.pad(heat, (0, 0, 0, 0, 0, 0, 1, 0)).unsqueeze(2)  # background channel of zeros first
        net_in = torch.cat([heat, deformed], dim=2).reshape(b, -1, d, h, w)
        prediction = self.hourglass(net_in)
        mask = F.softmax(self.mask(prediction), dim=1).unsqueeze(-1)  # (B, K+1, D, H, W, 1)
        deformation = (sparse * mask).sum(dim=1)  # (B, D, H, W, 3)
        occlusion = None
        if self.estimate_occlusion_map:
            occlusion = torch.sigmoid(self.occlusion(prediction.reshape(b, -1, h, w)))
        return deformation, occlusion


def _gaussian(grid: torch.Tensor, kp: torch.Tensor) -> torch.Tensor:
    """Gaussian heat maps ``(B, K, D, H, W)`` of keypoints ``kp (B, K, 3)`` on ``grid (D, H, W, 3)``."""
    b, k, _ = kp.shape
    diff = grid.unsqueeze(0).unsqueeze(0) - kp.reshape(b, k, 1, 1, 1, 3)
    return torch.exp(-0.5 * diff.pow(2).sum(-1) / KP_VARIANCE)


class WarpingNetwork(nn.Module):
    """``feature_3d (B, 32, 16, 64, 64)``, ``kp_driving``/``kp_source (B, 21, 3)`` → :class:`WarpOutput`."""

    def __init__(self, p: WarpingParams, feature_size: tuple[int, int, int] = (16, 64, 64)) -> None:
        super().__init__()
        self.dense_motion_network = DenseMotionNetwork(p, feature_size)
        width = p.block_expansion * 2**p.num_down_blocks
        self.third = SameBlock2d(p.max_features, width, lrelu=True)
        self.fourth = nn.Conv2d(width, width, kernel_size=1)

    def set_sampler(self, sampler: Sampler) -> None:
        """Pick the volumetric sampler: ``native`` (5-D grid_sample) or ``slices`` (4-D only, for TensorRT)."""
        self.dense_motion_network.sampler = sampler

    def forward(self, feature_3d: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor) -> WarpOutput:
        deformation, occlusion = self.dense_motion_network(feature_3d, kp_driving, kp_source)
        warped = grid_sample_3d(feature_3d, deformation, self.dense_motion_network.sampler)
        b, c, d, h, w = warped.shape
        out = self.fourth(self.third(warped.reshape(b, c * d, h, w)))
        if occlusion is None:
            occlusion = torch.ones_like(out[:, :1])
        else:
            out = out * occlusion
        return WarpOutput(occlusion_map=occlusion, deformation=deformation, out=out)
