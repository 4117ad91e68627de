"""Forced alignment in any espeak-ng language: espeak's phones for the transcript, pocketsphinx's en-us model.

espeak-ng's letter-to-sound rules give each word's IPA phones; each phone stands in for its nearest CMU phones
(``phonemize.ipa_to_cmu``) as a pseudo-word in pocketsphinx's dictionary, and the English acoustic model
force-aligns them. Bilabials, the phones that matter most for the lips, are the same sounds in every language.
"""

from __future__ import annotations

import numpy as np
from livepuppet.engine.speech.visemes import VISEME_INDEX, arpabet_to_viseme
from livepuppet.export.audio.asterisk import PocketsphinxAligner
from livepuppet.export.audio.phonemize import Phone, Phonemizer
from livepuppet.export.audio.speech_data import Segment

_FRAME_S = 0.01  # pocketsphinx frames


def pseudo_word(phones: tuple[Phone, ...]) -> str:
    """A dictionary name for one espeak word's CMU pronunciation (equal pronunciations share the name)."""
    return "xlp-" + "-".join(c.lower() for p in phones for c in p.cmu)


class CrossLingualAligner:
    """Aligns recordings of known text in an espeak-ng language with pocketsphinx's English acoustic model."""

    def __init__(self, phonemizer: Phonemizer, aligner: PocketsphinxAligner) -> None:
        self._phonemizer = phonemizer
        self._aligner = aligner

    def align(self, audio: np.ndarray, rate: int, text: str, voice: str) -> tuple[Segment, ...] | None:
        """Viseme segments of ``text`` (spoken in espeak voice ``voice``'s language) in ``audio``; None on failure."""
        words = self._phonemizer.words(text, voice)
        if not words:
            return None
        names = []
        visemes: dict[str, list[int]] = {}
        for phones in words:
            name = pseudo_word(phones)
            self._aligner.add_word(name, tuple(c for p in phones for c in p.cmu))
            visemes[name] = [p.viseme for p in phones for _ in p.cmu]
            names.append(name)
        alignment = self._aligner.alignment(audio, rate, names)
        if alignment is None:
            return None
        segments = []
        for word in alignment:
            labels = visemes.get(word.name)
            for k, aligned in enumerate(word.phones):
                if labels is not None and len(labels) == len(word.phones):
                    viseme = labels[k]  # the IPA phone's own viseme (e.g. β is FF even though it aligns as B)
                else:
                    viseme = VISEME_INDEX[arpabet_to_viseme(aligned.name)]  # fillers such as <sil>
                if viseme != 0 and aligned.duration > 0:
                    start = aligned.start * _FRAME_S
                    segments.append(Segment(start, start + aligned.duration * _FRAME_S, viseme))
        return tuple(segments) if segments else None
