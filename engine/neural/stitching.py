"""Stitching and eye/lip retargeting MLPs (one checkpoint file holds the three state dicts)."""

from __future__ import annotations

import torch
from livepuppet.engine.neural.arch import MlpParams
from torch import nn

# Keys of the three state dicts inside ``stitching_retargeting_module.pth``.
CHECKPOINT_KEYS = {"stitching": "retarget_shoulder", "lip": "retarget_mouth", "eye": "retarget_eye"}


class RetargetingMlp(nn.Module):
    """Linear/ReLU stack ``(B, input_size)`` → ``(B, output_size)`` (keys ``mlp.0``, ``mlp.2``, …)."""

    def __init__(self, p: MlpParams) -> None:
        super().__init__()
        sizes = (p.input_size, *p.hidden_sizes)
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], p.output_size))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)
