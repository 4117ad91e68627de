"""Motion extractor M: a ConvNeXt-V2 backbone with heads for canonical keypoints, head pose bins, expression
deformation, translation and scale. Run in fp32: it overflows in fp16 (see docs/neural-renderer.md)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from livepuppet.engine.neural.arch import MotionParams
from livepuppet.engine.neural.layers import Grn, LayerNorm2d
from torch import nn


@dataclass(frozen=True, slots=True)
class MotionOutput:
    """Raw head outputs for a batch: ``pitch``/``yaw``/``roll`` ``(B, 66)`` bin logits, ``t (B, 3)``,
    ``exp (B, 3K)``, ``scale (B, 1)``, ``kp (B, 3K)`` canonical keypoints."""

    pitch: torch.Tensor
    yaw: torch.Tensor
    roll: torch.Tensor
    t: torch.Tensor
    exp: torch.Tensor
    scale: torch.Tensor
    kp: torch.Tensor

    def as_tuple(self) -> tuple[torch.Tensor, ...]:
        return (self.pitch, self.yaw, self.roll, self.t, self.exp, self.scale, self.kp)


MOTION_OUTPUT_NAMES = ("pitch", "yaw", "roll", "t", "exp", "scale", "kp")


class ConvNeXtBlock(nn.Module):
    """Depthwise 7×7 conv, LayerNorm, MLP ×4 with GELU and GRN, residual."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.grn = Grn(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.grn(F.gelu(self.pwconv1(self.norm(y)))))
        return x + y.permute(0, 3, 1, 2)


class ConvNeXtV2(nn.Module):
    """The backbone and heads (key prefix ``detector.`` in the checkpoint)."""

    def __init__(self, p: MotionParams) -> None:
        super().__init__()
        dims = p.dims
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(3, dims[0], kernel_size=4, stride=4), LayerNorm2d(dims[0]))]
            + [nn.Sequential(LayerNorm2d(dims[i]), nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2))
               for i in range(len(dims) - 1)]
        )
        self.stages = nn.ModuleList(
            nn.Sequential(*(ConvNeXtBlock(d) for _ in range(n))) for d, n in zip(dims, p.depths, strict=True)
        )
        last = dims[-1]
        self.norm = nn.LayerNorm(last, eps=1e-6)
        self.fc_kp = nn.Linear(last, 3 * p.num_kp)
        self.fc_scale = nn.Linear(last, 1)
        self.fc_pitch = nn.Linear(last, p.num_bins)
        self.fc_yaw = nn.Linear(last, p.num_bins)
        self.fc_roll = nn.Linear(last, p.num_bins)
        self.fc_t = nn.Linear(last, 3)
        self.fc_exp = nn.Linear(last, 3 * p.num_kp)

    def forward(self, x: torch.Tensor) -> MotionOutput:
        for down, stage in zip(self.downsample_layers, self.stages, strict=True):
            x = stage(down(x))
        f = self.norm(x.mean(dim=(-2, -1)))
        return MotionOutput(pitch=self.fc_pitch(f), yaw=self.fc_yaw(f), roll=self.fc_roll(f), t=self.fc_t(f),
                            exp=self.fc_exp(f), scale=self.fc_scale(f), kp=self.fc_kp(f))


class MotionExtractor(nn.Module):
    """``(B, 3, 256, 256) f32 [0,1]`` → :class:`MotionOutput`."""

    def __init__(self, p: MotionParams) -> None:
        super().__init__()
        if p.backbone != "convnextv2_tiny":
            raise ValueError(f"motion extractor backbone {p.backbone!r} is not supported; use convnextv2_tiny")
        self.detector = ConvNeXtV2(p)

    def forward(self, image: torch.Tensor) -> MotionOutput:
        return self.detector(image)
