"""Retargeting: the driver's relative motion applied to the portrait in its own face frame.

Head motion is relative (driver now vs its reference) and applied around the portrait's own pose;
expression goes through the portrait's rig (``mode = "expression"``: identity-safe, a big-jawed driver
cannot deform a small-jawed portrait) or as raw normalized landmark deltas (``mode = "landmarks"``).
Per-region gains and limits, then per-channel filters (:mod:`motion_filter`). A lost face holds, then eases
back to neutral; in landmarks mode no point moves further than ``max_delta`` from neutral.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from livepuppet.engine.config import RetargetConfig
from livepuppet.engine.face import topology as ft
from livepuppet.engine.motion.motion_filter import MotionFilter
from livepuppet.engine.motion.one_euro import OneEuroFilter
from livepuppet.engine.motion.rig import uncross
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.types import NUM_LANDMARKS, Expression, HeadMotion, Motion, Target, euler_to_matrix

HEAD_PIVOT = np.array([0.0, 0.6, 1.0])  # face-frame units: between the ears, a little low
SCALE_ANCHOR = 1.0  # the head scales about this fraction of the way from the eyes down to the chin
ANCHOR_FROM, ANCHOR_FULL_AT = 0.02, 0.06  # scale change over which the anchor slides from the eyes to the chin
_HEAD_FIELDS = ("yaw", "pitch", "roll", "tx", "ty", "scale")
_EYE_IDX = np.array(sorted(set(ft.EYE_R_UPPER + ft.EYE_R_LOWER + ft.EYE_L_UPPER + ft.EYE_L_LOWER
                               + ft.EYE_R_UPPER_RING + ft.EYE_L_UPPER_RING + ft.IRIS_R + ft.IRIS_L)))
_BROW_IDX = np.array(ft.BROW_R + ft.BROW_L)
_MOUTH_IDX = np.array(sorted(set(ft.LIP_OUTER_UPPER + ft.LIP_OUTER_LOWER + ft.LIP_INNER_UPPER
                                 + ft.LIP_INNER_LOWER)))


def _smoothstep(t: float) -> float:
    t = min(1.0, max(0.0, t))
    return t * t * (3.0 - 2.0 * t)


def soft_limit(value: float, limit: float) -> float:
    """``value`` squashed smoothly into ``(-limit, limit)``: unchanged when small (slope 1 at 0), never a
    hard stop. The portrait's body stays where it is, so the head may move and grow only so far from it."""
    return float(limit * np.tanh(value / limit)) if limit > 0.0 else 0.0


def _after_lead(e: Expression) -> Expression:
    """The filter's lead may overshoot a closing lid or mouth: keep them physically possible."""
    return replace(e, eye_open_l=max(0.0, e.eye_open_l), eye_open_r=max(0.0, e.eye_open_r),
                   mouth_round=min(1.0, max(0.0, e.mouth_round)))


def _clip_norm(deltas: np.ndarray, limit: float) -> np.ndarray:
    """Shorten each point's displacement ``(N, 3)`` to at most ``limit``."""
    norm = np.linalg.norm(deltas, axis=1, keepdims=True)
    return np.asarray(deltas * np.minimum(1.0, limit / np.maximum(norm, 1e-12)))


class Retargeter:
    """Per-session state (filter, last motion); cheap to create; not thread-safe."""

    def __init__(self, source: PreparedSource, config: RetargetConfig) -> None:
        self._source = source
        self._config = config
        self._filter = MotionFilter(config)
        self._delta_filter = OneEuroFilter(config.filter_min_cutoff, config.filter_beta, config.filter_d_cutoff,
                                           config.filter_lead)
        self._last_out: tuple[HeadMotion, Expression, np.ndarray | None] | None = None  # shown, filtered
        self._lost_since_ns: int | None = None
        gains = np.ones((NUM_LANDMARKS, 1))
        gains[_MOUTH_IDX] = config.mouth_gain if config.lip_retargeting else 0.0
        gains[_EYE_IDX] = config.eye_gain if config.eye_retargeting else 0.0
        gains[_BROW_IDX] = config.brow_gain
        self._delta_gains = gains
        self._scale_anchor = np.array([0.0, SCALE_ANCHOR * source.neutral[ft.CHIN, 1], 0.0])

    def reset(self) -> None:
        self._filter.reset()
        self._delta_filter.reset()
        self._last_out = None
        self._lost_since_ns = None

    def _lost_weight(self, pts: int) -> float:
        """How much of the last output a lost face still shows at ``pts``: 1 while holding, easing to 0."""
        if self._lost_since_ns is None:
            self._lost_since_ns = pts
        lost_s = (pts - self._lost_since_ns) / 1e9
        return 1.0 - _smoothstep((lost_s - self._config.lost_hold_s) / max(self._config.lost_ease_s, 1e-6))

    def _ease_lost(self, pts: int, t: float) -> tuple[HeadMotion, Expression, np.ndarray | None]:
        """While the face is lost: the last output (filtered, limited) eased to neutral, in exactly
        ``lost_hold_s + lost_ease_s``; the filters are held on it, so they do not slow the ease down and a
        face found again continues from what is shown."""
        assert self._last_out is not None
        k = self._lost_weight(pts)
        last_head, last_expression, last_deltas = self._last_out
        rest = HeadMotion()
        head = HeadMotion(*(k * getattr(last_head, f) + (1 - k) * getattr(rest, f) for f in _HEAD_FIELDS))
        neutral = Expression().as_array()
        expression = Expression.from_array(neutral + k * (last_expression.as_array() - neutral))
        self._filter.hold(head, expression, t)
        deltas = None
        if last_deltas is not None:
            deltas = last_deltas * k
            self._delta_filter.hold(deltas, t)
        return head, expression, deltas

    def _limit(self, head: HeadMotion, e: Expression) -> tuple[HeadMotion, Expression]:
        c = self._config
        g, tg = c.head_gain, c.translation_gain
        head = HeadMotion(
            yaw=float(np.clip(head.yaw * g, -c.max_yaw, c.max_yaw)),
            pitch=float(np.clip(head.pitch * g, -c.max_pitch, c.max_pitch)),
            roll=float(np.clip(head.roll * g, -c.max_roll, c.max_roll)),
            tx=soft_limit(head.tx * tg, c.max_translation),
            ty=soft_limit(head.ty * tg, c.max_translation),
            scale=1.0 + soft_limit((head.scale - 1.0) * tg, c.max_head_scale),
        )
        eg = c.eye_gain if c.eye_retargeting else 0.0
        mg = c.mouth_gain if c.lip_retargeting else 0.0
        e = Expression(
            eye_open_l=float(np.clip(1.0 + (e.eye_open_l - 1.0) * eg, 0.0, 1.5)),
            eye_open_r=float(np.clip(1.0 + (e.eye_open_r - 1.0) * eg, 0.0, 1.5)),
            brow_raise=float(np.clip(e.brow_raise * c.brow_gain, -0.15, 0.3)),
            mouth_open=float(np.clip(e.mouth_open * mg, -1.0, c.max_mouth_open)),
            mouth_width=float(np.clip(e.mouth_width * mg, -0.3, 0.4)),
            mouth_round=float(np.clip(e.mouth_round * mg, 0.0, 1.0)),
            smile=float(np.clip(e.smile * mg, -0.2, 0.3)),
            jaw=float(np.clip(e.jaw * mg, -0.1, c.max_mouth_open)),
            gaze_x=float(np.clip(e.gaze_x * c.gaze_gain, -0.6, 0.6)),
            gaze_y=float(np.clip(e.gaze_y * c.gaze_gain, -0.5, 0.5)),
        )
        return head, e

    def retarget(self, motion: Motion) -> Target:
        """Motion → target landmarks in the portrait's crop pixels."""
        t = motion.pts / 1e9
        src = self._source
        landmarks_mode = self._config.mode == "landmarks"
        deltas: np.ndarray | None
        if not motion.face_found and self._last_out is not None:
            head, expression, deltas = self._ease_lost(motion.pts, t)
        else:
            if motion.face_found:
                self._lost_since_ns = None
                m = motion
            else:  # no face yet: neutral
                m = Motion(pts=motion.pts, seq=motion.seq)
            head, expression = self._limit(m.head, m.expression)
            head, expression = self._filter(head, expression, t)
            expression = _after_lead(expression)
            deltas = None
            if landmarks_mode and m.deltas is not None:
                deltas = _clip_norm(self._delta_filter(m.deltas.astype(np.float64), t), self._config.max_delta)
            if motion.face_found:
                self._last_out = (head, expression, deltas)
        if landmarks_mode and deltas is not None:
            face = src.neutral + deltas * self._delta_gains
            uncross(face)
        else:
            face = src.rig.apply(expression)
        pose = src.pose
        rotation = euler_to_matrix(head.yaw, head.pitch, head.roll) @ pose.rotation
        origin = pose.origin + np.array([head.tx, head.ty, 0.0]) * pose.scale
        # The head turns about a pivot behind the face (near the neck), not about the eyes.
        local = (face - HEAD_PIVOT) @ rotation.T + HEAD_PIVOT @ pose.rotation.T
        # It grows about the neck too (the driver leaning in): the chin stays over the collar and the
        # forehead rises, so the neck between head and body is not squeezed.
        # A small scale wobble is tracker noise: about the eyes it barely shows, about the chin it would move
        # the whole upper face, so the anchor slides to the chin only as the head really grows or shrinks.
        share = _smoothstep((abs(head.scale - 1.0) - ANCHOR_FROM) / (ANCHOR_FULL_AT - ANCHOR_FROM))
        anchor = share * (self._scale_anchor @ pose.rotation.T)
        landmarks = origin + pose.scale * (anchor + head.scale * (local - anchor))
        return Target(pts=motion.pts, seq=motion.seq, landmarks=landmarks.astype(np.float32), expression=expression,
                      head=head)
