"""The training loop: random crops of (augmented) utterances, cross-entropy on visemes + MSE on mouth controls."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from livepuppet.export.audio.dataset import Example, sample_batch, source_weights
from livepuppet.export.audio.model import AudioMouthNet, NetConfig
from torch.nn import functional as F
from tqdm import tqdm

MOUTH_WEIGHTS = (1.0, 1.0, 1.0, 3.0, 1.0)  # jaw, width, round, close (bilabial closure matters most), voiced


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Optimisation settings; training stops at ``minutes`` of wall time or ``max_steps``, whichever comes first."""

    minutes: float = 15.0
    max_steps: int | None = None
    batch: int = 32
    crop_steps: int = 300
    lr: float = 3e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.05
    real_share: float | None = 0.35  # share of crops from real recordings (None: as many as they are)
    seed: int = 0
    net: NetConfig = field(default_factory=NetConfig)


@dataclass(frozen=True, slots=True)
class TrainResult:
    """The trained network and its loss curve."""

    net: AudioMouthNet
    losses: tuple[float, ...]  # one per step
    steps: int
    seconds: float


def feature_stats(examples: list[Example]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-band mean and std of the training log-mel (baked into the network)."""
    stacked = np.concatenate([ex.mel for ex in examples])
    return torch.from_numpy(stacked.mean(axis=0)), torch.from_numpy(stacked.std(axis=0) + 1e-3)


def loss_fn(
    net: AudioMouthNet, mel: torch.Tensor, visemes: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor,
    label_smoothing: float,
) -> torch.Tensor:
    """Masked viseme cross-entropy plus weighted MSE of the activated mouth controls."""
    h0 = torch.zeros(1, mel.shape[0], net.config.hidden)
    logits, raw, _ = net(mel, h0)
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), visemes.reshape(-1), ignore_index=-1,
                         label_smoothing=label_smoothing)
    weights = torch.tensor(MOUTH_WEIGHTS)
    err = ((AudioMouthNet.activate(raw) - targets) ** 2 * weights).sum(-1)
    mse = (err * mask).sum() / mask.sum().clamp(min=1)
    return ce + 2.0 * mse


def lr_at(fraction: float, base: float) -> float:
    """Linear warm-up over the first 3 %, then cosine decay to 5 % of ``base``."""
    if fraction < 0.03:
        return base * max(fraction / 0.03, 0.05)
    return base * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, (fraction - 0.03) / 0.97))))


def train(
    examples: list[Example], config: TrainConfig, clock: Callable[[], float], quiet: bool = False
) -> TrainResult:
    """Train a fresh network on ``examples``; ``clock`` (seconds, monotonic) bounds the wall time."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    mean, std = feature_stats(examples)
    net = AudioMouthNet(config.net, mean, std)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    budget = config.minutes * 60.0
    start = clock()
    losses: list[float] = []
    weights = source_weights(examples, config.real_share)
    bar = tqdm(total=config.max_steps, desc="training", disable=quiet, dynamic_ncols=True, unit="step")
    net.train()
    while True:
        fraction = (clock() - start) / budget if budget > 0 else 1.0
        if config.max_steps is not None:
            fraction = max(fraction, len(losses) / config.max_steps)
        if fraction >= 1.0:
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(fraction, config.lr)
        b = sample_batch(examples, config.batch, config.crop_steps, config.net.context, config.net.lookahead, rng,
                         weights)
        loss = loss_fn(net, torch.from_numpy(b.mel), torch.from_numpy(b.visemes), torch.from_numpy(b.targets),
                       torch.from_numpy(b.mask).float(), config.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        bar.update(1)
        if len(losses) % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", done=f"{100 * fraction:.0f}%")
    bar.close()
    net.eval()
    return TrainResult(net=net, losses=tuple(losses), steps=len(losses), seconds=clock() - start)
