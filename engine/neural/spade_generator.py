"""SPADE generator G: the warped 2-D feature map → the output face image at twice the input resolution."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from livepuppet.engine.neural.arch import GeneratorParams
from livepuppet.engine.neural.layers import SpadeResBlock, SpectralConv2d
from torch import nn


class SpadeGenerator(nn.Module):
    """``(B, 256, 64, 64)`` → ``(B, 3, 512, 512) [0,1]`` (published sizes)."""

    def __init__(self, p: GeneratorParams) -> None:
        super().__init__()
        cin = min(p.max_features, p.block_expansion * 2**p.num_down_blocks)
        self.num_middle_blocks = p.num_middle_blocks
        self.fc = nn.Conv2d(cin, 2 * cin, 3, padding=1)
        for i in range(p.num_middle_blocks):
            self.add_module(f"G_middle_{i}", SpadeResBlock(2 * cin, 2 * cin, cin, p.spade_hidden))
        self.up_0 = SpadeResBlock(2 * cin, cin, cin, p.spade_hidden)
        self.up_1 = SpadeResBlock(cin, p.out_channels, cin, p.spade_hidden)
        if p.upscale > 1:
            self.conv_img = nn.Sequential(nn.Conv2d(p.out_channels, 3 * p.upscale**2, 3, padding=1),
                                          nn.PixelShuffle(p.upscale))
        else:
            self.conv_img = nn.Sequential(nn.Conv2d(p.out_channels, 3, 3, padding=1))

        for m in self.modules():
            if isinstance(m, SpectralConv2d):
                m.power_iterate()

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        seg = feature
        x = self.fc(feature)
        for i in range(self.num_middle_blocks):
            x = getattr(self, f"G_middle_{i}")(x, seg)
        x = self.up_0(F.interpolate(x, scale_factor=2.0, mode="nearest"), seg)
        x = self.up_1(F.interpolate(x, scale_factor=2.0, mode="nearest"), seg)
        return torch.sigmoid(self.conv_img(F.leaky_relu(x, 0.2)))
