"""What both framework adapters must show on the same real speech: about fps pictures per second of speech,
the same audio back, lips that close on p/b/m and open on open vowels (re-tracked)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from livepuppet.engine.face.expression import FaceFeatures
from livepuppet.engine.speech.visemes import VISEMES

TEXT = "Papa bought a map. Bob may pop by the barn. Mama, a bad apple!"
VOICE = "en-us+f5"  # held out of the audio model's training (assets/audio_mouth.md)


def lip_gaps_at_phones(utterance, frames: Sequence[tuple[float, np.ndarray]],  # noqa: ANN001
                       measure: Callable[[np.ndarray], FaceFeatures | None]) -> tuple[list[float], list[float]]:
    """Re-tracked lip gaps of the frames whose speech instant is nearest the centre of each p/b/m and each
    open-vowel phone. ``frames``: (speech_t, pixels) of the speech frames that came out."""
    times = np.array([t for t, _ in frames])

    def gap_at(centre: float) -> float | None:
        k = int(np.argmin(np.abs(times - centre)))
        if abs(times[k] - centre) > 0.03:
            return None
        features = measure(frames[k][1])
        return None if features is None else features.lip_gap

    pp = [s for s in utterance.segments if VISEMES[s.viseme] == "PP" and s.end - s.start >= 0.04]
    aa = [s for s in utterance.segments if VISEMES[s.viseme] == "aa" and s.end - s.start >= 0.05]
    closed = [g for s in pp if (g := gap_at((s.start + s.end) / 2)) is not None]
    opened = [g for s in aa if (g := gap_at((s.start + s.end) / 2)) is not None]
    return closed, opened


def assert_lips_follow(utterance, frames: Sequence[tuple[float, np.ndarray]], rest: float,  # noqa: ANN001
                       measure: Callable[[np.ndarray], FaceFeatures | None]) -> None:
    closed, opened = lip_gaps_at_phones(utterance, frames, measure)
    assert len(closed) >= 6 and len(opened) >= 4, (len(closed), len(opened))
    recall = float(np.mean([g < 0.5 * rest for g in closed]))
    print(f"rest {rest:.3f}; bilabial gaps {np.round(closed, 3)}; open-vowel gaps {np.round(opened, 3)}; "
          f"closure recall {recall:.2f}")
    assert recall >= 0.6, f"lips closed on only {recall:.0%} of p/b/m"
    assert np.median(opened) > rest + 0.05 and np.median(opened) > np.median(closed) + 0.1
