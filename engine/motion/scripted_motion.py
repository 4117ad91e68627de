"""A scripted performance for the demo: blinks, head turns, speech-like mouth, brows, a smile.

Deterministic (a function of time only), so the demo and the tests see the same motion every run.
"""

from __future__ import annotations

import math

from livepuppet.engine.motion.motion_file import MotionClip
from livepuppet.engine.types import Expression, HeadMotion, Motion

BLINKS_S = (0.9, 2.9, 4.6, 6.4, 7.6)
BLINK_S = 0.18


def _bump(t: float, start: float, end: float, ramp: float) -> float:
    """0 outside [start, end], 1 inside, with smooth ramps of ``ramp`` seconds."""
    if t <= start or t >= end:
        return 0.0
    k = min(1.0, (t - start) / ramp, (end - t) / ramp)
    return k * k * (3 - 2 * k)


def _blink(t: float) -> float:
    """Eye openness: 1 open, dipping to 0 during each blink."""
    open_ = 1.0
    for b in BLINKS_S:
        x = (t - b) / BLINK_S
        if 0.0 <= x <= 1.0:
            open_ = min(open_, abs(2.0 * x - 1.0) ** 1.5)
    return open_


def scripted_motion(t: float, seq: int = 0) -> Motion:
    """The demo performance at time ``t`` seconds."""
    talk = _bump(t, 1.6, 5.4, 0.25)
    syllable = 0.5 + 0.5 * math.sin(2 * math.pi * 4.2 * t + 0.6 * math.sin(2 * math.pi * 0.9 * t))
    mouth = talk * (0.04 + 0.22 * syllable**1.6)
    rounding = talk * max(0.0, math.sin(2 * math.pi * 0.7 * t)) ** 3
    smile = 0.09 * _bump(t, 5.6, 8.0, 0.5)
    brow = 0.08 * (_bump(t, 2.2, 2.9, 0.2) + _bump(t, 4.2, 4.8, 0.2))
    head = HeadMotion(
        yaw=14.0 * math.sin(2 * math.pi * t / 5.0),
        pitch=5.0 * math.sin(2 * math.pi * t / 3.3 + 1.0),
        roll=4.0 * math.sin(2 * math.pi * t / 4.1),
        tx=0.03 * math.sin(2 * math.pi * t / 6.0),
    )
    openness = _blink(t)
    expression = Expression(
        eye_open_l=openness, eye_open_r=openness, brow_raise=brow, mouth_open=mouth, jaw=0.7 * mouth,
        mouth_width=0.08 * smile / 0.09 - 0.05 * rounding, mouth_round=0.6 * rounding, smile=smile,
        gaze_x=0.25 * math.sin(2 * math.pi * t / 3.7), gaze_y=0.1 * math.sin(2 * math.pi * t / 2.3),
    )
    return Motion(pts=int(round(t * 1e9)), seq=seq, head=head, expression=expression)


def scripted_clip(duration_s: float = 8.0, fps: float = 25.0) -> MotionClip:
    n = max(1, int(round(duration_s * fps)))
    return MotionClip(fps=fps, motions=tuple(scripted_motion(i / fps, i) for i in range(n)))
