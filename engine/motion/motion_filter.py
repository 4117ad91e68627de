"""Per-channel smoothing of retargeted motion: the head pose filtered hardest, mouth and lids least.

Measured on a still photo re-encoded as noisy video (bench/bench_motion_filter.py), the tracker's head
pose carries most of the landmark jitter and wobbles as a whole mesh (more points in the rigid fit do not
average it out), so it gets the low cutoff; the mouth opening and lids carry little noise and fast motion,
so they get a high cutoff plus a small lead. One One Euro filter runs over all channels with per-channel
settings; angles are filtered in radians so one ``beta`` means the same on every head channel.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from livepuppet.engine.config import RetargetConfig
from livepuppet.engine.motion.one_euro import OneEuroFilter
from livepuppet.engine.types import Expression, HeadMotion

HEAD_FIELDS = ("yaw", "pitch", "roll", "tx", "ty", "scale")
FAST_FIELDS = ("eye_open_l", "eye_open_r", "mouth_open", "jaw")  # fast articulators: little smoothing
_N_HEAD = len(HEAD_FIELDS)
_TO_RAD = np.array([math.pi / 180.0] * 3 + [1.0] * 3)


def channel_settings(config: RetargetConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(min_cutoff, beta, lead, d_cutoff) per channel, in the order head fields (angles in rad) then
    expression."""
    names = Expression.names()
    fast = np.array([n in FAST_FIELDS for n in names])
    c = config.filter_min_cutoff
    cutoff = np.concatenate([np.full(_N_HEAD, c * config.head_filter_ratio),
                             np.where(fast, c, c * config.slow_filter_ratio)])
    beta = np.concatenate([np.full(_N_HEAD, config.head_filter_beta), np.full(len(names), config.filter_beta)])
    lead = np.concatenate([np.zeros(_N_HEAD), np.where(fast, config.filter_lead, 0.0)])
    d_cutoff = np.concatenate([np.full(_N_HEAD, config.head_filter_d_cutoff),
                               np.full(len(names), config.filter_d_cutoff)])
    return cutoff, beta, lead, d_cutoff


class MotionFilter:
    """Smooths (head, expression) pairs over time; ``reset()`` forgets the history. Not thread-safe."""

    def __init__(self, config: RetargetConfig) -> None:
        cutoff, beta, lead, d_cutoff = channel_settings(config)
        self._filter = OneEuroFilter(cutoff, beta, d_cutoff, lead)

    def reset(self) -> None:
        self._filter.reset()

    def hold(self, head: HeadMotion, expression: Expression, t: float) -> None:
        """Put the filter at rest on (head, expression) at ``t`` (see :meth:`OneEuroFilter.hold`)."""
        self._filter.hold(_channels(head, expression), t)

    def __call__(self, head: HeadMotion, expression: Expression, t: float) -> tuple[HeadMotion, Expression]:
        out = self._filter(_channels(head, expression), t)
        head_values = out[:_N_HEAD] / _TO_RAD
        return HeadMotion(*(float(v) for v in head_values)), Expression.from_array(out[_N_HEAD:])


def _channels(head: HeadMotion, expression: Expression) -> np.ndarray:
    """The filtered channels: head fields (angles in rad), then the expression."""
    return np.concatenate([np.array([getattr(head, f) for f in HEAD_FIELDS]) * _TO_RAD, expression.as_array()])


def unfiltered(config: RetargetConfig) -> RetargetConfig:
    """``config`` with every channel's filter opened up (100 Hz, no speed term, no lead): raw motion, e.g. to
    render a driver video that shows exactly a script."""
    return replace(config, filter_min_cutoff=100.0, filter_beta=0.0, filter_lead=0.0, head_filter_ratio=1.0,
                   slow_filter_ratio=1.0, head_filter_beta=0.0)
