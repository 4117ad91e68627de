"""The audio→mouth network: causal conv front-end over log-mel, one GRU, linear heads (streams step by step)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from livepuppet.engine.speech.features import N_MELS
from livepuppet.engine.speech.visemes import VISEMES
from torch import nn


@dataclass(frozen=True, slots=True)
class NetConfig:
    """Shape of the network; ``context`` is the conv's past reach, ``lookahead`` the output delay (frames)."""

    conv_channels: int = 96
    hidden: int = 128
    context: int = 4
    lookahead: int = 3


class AudioMouthNet(nn.Module):
    """``mel (B, T + context, 40) f32`` + ``h0 (1, B, H)`` → logits ``(B, T, 15)``, mouth ``(B, T, 5)``, ``h1``.

    Mouth columns after :meth:`activate`: jaw_open [0,1], lip_width [-1,1], lip_round, lip_close, voiced [0,1].
    Feature normalisation (training mean/std) is part of the network so the runtime feeds raw log-mel.
    """

    mean: torch.Tensor
    inv_std: torch.Tensor

    def __init__(self, config: NetConfig, mean: torch.Tensor | None = None, std: torch.Tensor | None = None) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("mean", mean if mean is not None else torch.zeros(N_MELS))
        self.register_buffer("inv_std", 1.0 / std if std is not None else torch.ones(N_MELS))
        self.conv = nn.Conv1d(N_MELS, config.conv_channels, kernel_size=config.context + 1)
        self.mix = nn.Conv1d(config.conv_channels, config.conv_channels, kernel_size=1)
        self.gru = nn.GRU(config.conv_channels, config.hidden, batch_first=True)
        self.head = nn.Linear(config.hidden, len(VISEMES) + 5)

    def forward(self, mel: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = ((mel - self.mean) * self.inv_std).transpose(1, 2)  # (B, 40, T + context)
        x = torch.relu(self.mix(torch.relu(self.conv(x)))).transpose(1, 2)  # (B, T, C)
        y, h1 = self.gru(x, h0)
        out = self.head(y)
        return out[..., : len(VISEMES)], out[..., len(VISEMES) :], h1

    @staticmethod
    def activate(raw: torch.Tensor) -> torch.Tensor:
        """Raw mouth outputs → their ranges (tanh for lip_width, sigmoid for the rest)."""
        return torch.cat([torch.sigmoid(raw[..., :1]), torch.tanh(raw[..., 1:2]), torch.sigmoid(raw[..., 2:])], dim=-1)


class ExportWrapper(nn.Module):
    """What the ONNX file computes: probabilities and activated mouth controls."""

    def __init__(self, net: AudioMouthNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, mel: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, raw, h1 = self.net(mel, h0)
        return torch.softmax(logits, dim=-1), AudioMouthNet.activate(raw), h1
