"""Training utterances: audio plus a phone-level viseme segmentation, whatever aligner produced it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Segment:
    """One aligned phone, already mapped to a viseme index."""

    start: float  # seconds from the start of the audio
    end: float  # seconds, > start
    viseme: int  # index into engine.visemes.VISEMES


@dataclass(frozen=True, slots=True)
class Utterance:
    """A clip with its viseme alignment; anything outside the segments is silence."""

    audio: np.ndarray  # (n,) f32 [-1,1] mono at ``rate``
    rate: int  # Hz
    segments: tuple[Segment, ...]
    source: str  # "espeak" or "asterisk"
    speaker: str  # voice name or recording speaker
    text: str
