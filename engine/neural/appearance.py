"""Appearance feature extractor F: the source image's 3-D feature volume, computed once per portrait."""

from __future__ import annotations

import torch
from livepuppet.engine.neural.arch import AppearanceParams
from livepuppet.engine.neural.layers import DownBlock2d, ResBlock3d, SameBlock2d
from torch import nn


class AppearanceFeatureExtractor(nn.Module):
    """``(B, 3, 256, 256) f32 [0,1]`` → ``(B, 32, 16, 64, 64)`` feature volume (published sizes)."""

    def __init__(self, p: AppearanceParams) -> None:
        super().__init__()
        self.reshape_channel = p.reshape_channel
        self.reshape_depth = p.reshape_depth
        self.first = SameBlock2d(p.image_channel, p.block_expansion)
        blocks = []
        cout = p.block_expansion
        for i in range(p.num_down_blocks):
            cin = min(p.max_features, p.block_expansion * 2**i)
            cout = min(p.max_features, p.block_expansion * 2 ** (i + 1))
            blocks.append(DownBlock2d(cin, cout))
        self.down_blocks = nn.ModuleList(blocks)
        self.second = nn.Conv2d(cout, p.max_features, kernel_size=1)
        self.resblocks_3d = nn.Sequential()
        for i in range(p.num_resblocks):
            self.resblocks_3d.add_module(f"3dr{i}", ResBlock3d(p.reshape_channel))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        out = self.first(image)
        for block in self.down_blocks:
            out = block(out)
        out = self.second(out)
        b, _, h, w = out.shape
        return self.resblocks_3d(out.reshape(b, self.reshape_channel, self.reshape_depth, h, w))
