"""Speech + life → face motion: the mouth from the audio model, and everything a still photo lacks when
it talks (blinks, idle sway and breathing, nods on stressed syllables, brow raises on pitch accents,
gaze shifts) plus an emotion that blends with speech.

Random but reproducible (seeded); evaluated at increasing wall times, one call per video frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from livepuppet.engine.config import EMOTIONS, SpeechConfig
from livepuppet.engine.speech.timeline import SILENT, SpeechSample
from livepuppet.engine.types import Expression, HeadMotion, Motion

MOUTH_OPEN_MAX = 0.30  # inner-lip gap of the widest vowel, inter-ocular units (a big "aa")
LIP_WIDTH_RANGE = 0.12  # relative mouth-width change at lip_width = ±1
LIP_ROUND_GAIN = 0.8
BLINK_S = 0.2
MIN_BLINK_GAP_S = 1.0
EMOTION_TIME_S = 0.35  # time constant of emotion changes
NOD_DECAY_S = 0.25
BROW_DECAY_S = 0.35
NOD_DEG = 3.0
BROW_ACCENT = 0.06
SPEAKING_DECAY_S = 0.4


@dataclass(frozen=True, slots=True)
class EmotionShape:
    """Expression offsets (and head pitch) of an emotion at full intensity."""

    smile: float = 0.0
    brow_raise: float = 0.0
    eye_open: float = 1.0  # multiplier
    mouth_width: float = 0.0
    mouth_open: float = 0.0
    pitch: float = 0.0  # degrees, + looks down

    def as_array(self) -> np.ndarray:
        return np.array([self.smile, self.brow_raise, self.eye_open, self.mouth_width, self.mouth_open, self.pitch])


EMOTION_SHAPES: dict[str, EmotionShape] = {
    "neutral": EmotionShape(),
    "happy": EmotionShape(smile=0.10, brow_raise=0.02, eye_open=0.88, mouth_width=0.08),
    "sad": EmotionShape(smile=-0.05, brow_raise=0.03, eye_open=0.8, mouth_width=-0.04, pitch=4.0),
    "surprised": EmotionShape(brow_raise=0.12, eye_open=1.25, mouth_open=0.05),
    "angry": EmotionShape(smile=-0.03, brow_raise=-0.07, eye_open=0.85, mouth_width=0.03, pitch=-2.0),
}
assert set(EMOTION_SHAPES) == set(EMOTIONS)


def mouth_expression(sample: SpeechSample, gain: float, rest_gap: float = 0.0) -> tuple[float, float, float, float]:
    """Model mouth controls → (mouth_open, jaw, mouth_width, mouth_round) expression coefficients.
    ``rest_gap`` is the portrait's own lip gap at rest: a photo with parted lips must close them for p/b/m."""
    closed = float(np.clip(sample.lip_close, 0.0, 1.0))
    mouth_open = gain * MOUTH_OPEN_MAX * float(np.clip(sample.jaw_open, 0.0, 1.0)) * (1.0 - closed) ** 1.5
    mouth_open -= closed * rest_gap
    jaw = 0.7 * max(0.0, mouth_open)
    width = gain * LIP_WIDTH_RANGE * float(np.clip(sample.lip_width, -1.0, 1.0))
    rounding = gain * LIP_ROUND_GAIN * float(np.clip(sample.lip_round, 0.0, 1.0))
    return mouth_open, jaw, width, rounding


class SpeechMotion:
    """Per-session generator of talking-head motion (not thread-safe)."""

    def __init__(self, config: SpeechConfig, rest_lip_gap: float = 0.0) -> None:
        self._config = config
        self._rest_gap = max(0.0, rest_lip_gap)
        self._rng = np.random.default_rng(config.seed)
        self._phases = self._rng.uniform(0, 2 * np.pi, 6)
        self._emotion_target = np.zeros(6)
        self.set_emotion(config.emotion, config.emotion_intensity)
        self._emotion = self._emotion_target.copy()
        self._last_t: float | None = None
        self._next_blink = self._blink_gap(0.5)
        self._blink_start = -10.0
        self._gaze = np.zeros(2)
        self._gaze_from = np.zeros(2)
        self._gaze_to = np.zeros(2)
        self._gaze_at = 0.0
        self._next_gaze = self._rng.uniform(0.5, 2.0)
        self._nod = 0.0
        self._brow = 0.0
        self._speaking = 0.0

    def set_emotion(self, name: str, intensity: float) -> None:
        """Blend towards ``name`` at ``intensity`` in [0, 1] (eased over ~EMOTION_TIME_S)."""
        if name not in EMOTION_SHAPES:
            raise ValueError(f"unknown emotion {name!r}; use one of {', '.join(EMOTIONS)}")
        shape = EMOTION_SHAPES[name].as_array()
        neutral = EMOTION_SHAPES["neutral"].as_array()
        self._emotion_target = neutral + (shape - neutral) * float(np.clip(intensity, 0.0, 1.0))

    def _blink_gap(self, now: float) -> float:
        rate = self._config.blink_rate_per_min
        if rate <= 0:
            return math.inf
        return now + max(MIN_BLINK_GAP_S, float(self._rng.exponential(60.0 / rate)))

    def _eyes(self, t: float) -> float:
        if t >= self._next_blink:
            self._blink_start = self._next_blink
            self._next_blink = self._blink_gap(t + BLINK_S)
        x = (t - self._blink_start) / BLINK_S
        return abs(2.0 * x - 1.0) ** 1.5 if 0.0 <= x <= 1.0 else 1.0

    def _gaze_at_time(self, t: float, speaking: float) -> np.ndarray:
        if not self._config.gaze_shifts:
            return np.zeros(2)
        if t >= self._next_gaze:
            spread = 0.08 if speaking > 0.5 else 0.18  # a speaker mostly holds the listener's eye
            self._gaze_from, self._gaze_at = self._gaze.copy(), t
            self._gaze_to = self._rng.normal(0, [spread, spread / 2])
            self._next_gaze = t + self._rng.uniform(1.5, 4.5) if speaking > 0.5 else t + self._rng.uniform(0.8, 3.0)
        k = min(1.0, (t - self._gaze_at) / 0.08)  # saccades take ~80 ms
        self._gaze = self._gaze_from + (self._gaze_to - self._gaze_from) * (k * k * (3 - 2 * k))
        return np.clip(self._gaze, -0.6, 0.6)

    def motion(self, t: float, speech: SpeechSample | None = None, seq: int = 0) -> Motion:
        """The face at wall time ``t`` (s, increasing), saying ``speech`` (None or SILENT when not talking)."""
        s = speech or SILENT
        dt = 0.0 if self._last_t is None else max(0.0, t - self._last_t)
        self._last_t = t
        cfg = self._config
        self._emotion += (self._emotion_target - self._emotion) * (1 - math.exp(-dt / EMOTION_TIME_S))
        smile, brow_e, eye_k, width_e, open_e, pitch_e = self._emotion
        self._speaking = max(s.voiced, self._speaking * math.exp(-dt / SPEAKING_DECAY_S))
        self._nod = max(s.stress, self._nod * math.exp(-dt / NOD_DECAY_S))
        self._brow = max(s.accent * s.voiced, self._brow * math.exp(-dt / BROW_DECAY_S))

        p = self._phases
        sway = cfg.sway_deg * (1.0 + 0.5 * self._speaking)
        head = HeadMotion(
            yaw=sway * (0.6 * math.sin(2 * math.pi * t / 7.3 + p[0]) + 0.4 * math.sin(2 * math.pi * t / 3.1 + p[1])),
            pitch=pitch_e + cfg.nod_gain * NOD_DEG * self._nod
            + 0.6 * sway * math.sin(2 * math.pi * t / 5.3 + p[2]),
            roll=0.5 * sway * math.sin(2 * math.pi * t / 6.1 + p[3]),
            tx=0.01 * math.sin(2 * math.pi * t / 9.7 + p[4]),
            ty=0.008 * math.sin(2 * math.pi * t / 4.2 + p[5]),  # breathing
            scale=1.0 + 0.003 * math.sin(2 * math.pi * t / 4.2 + p[5]),
        )
        mouth_open, jaw, width, rounding = mouth_expression(s, cfg.mouth_gain, self._rest_gap)
        eyes = self._eyes(t) * eye_k
        gaze = self._gaze_at_time(t, self._speaking)
        expression = Expression(
            eye_open_l=eyes, eye_open_r=eyes,
            brow_raise=brow_e + cfg.brow_gain * BROW_ACCENT * self._brow,
            mouth_open=mouth_open + open_e * (1.0 - s.lip_close), jaw=max(0.0, jaw) + 0.7 * open_e,
            mouth_width=width + width_e, mouth_round=rounding, smile=smile,
            gaze_x=float(gaze[0]), gaze_y=float(gaze[1]),
        )
        return Motion(pts=int(round(t * 1e9)), seq=seq, head=head, expression=expression)
