"""Held-out metrics of a shipped ONNX model, computed through the runtime (``AudioMouthModel``) itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from livepuppet.engine.speech.features import SAMPLE_RATE
from livepuppet.engine.speech.mouth_model import AudioMouthModel, MouthFrame
from livepuppet.engine.speech.visemes import COARSE_OF_VISEME, PP, SIL
from livepuppet.export.audio.dataset import frame_visemes, mouth_targets, to_16k
from livepuppet.export.audio.speech_data import Utterance

_COARSE = np.array(COARSE_OF_VISEME)


@dataclass(frozen=True, slots=True)
class Metrics:
    """Frame-level agreement with the aligner's labels on one held-out set."""

    utterances: int
    frames: int
    accuracy: float  # 15-class viseme accuracy
    coarse_accuracy: float  # 7 groups (engine.visemes.COARSE_GROUPS)
    bilabial_recall: float  # frames labelled PP with lip_close > 0.5
    bilabial_precision: float  # frames with lip_close > 0.5 that are labelled PP
    bilabial_segment_recall: float  # PP segments with lip_close > 0.5 on at least one frame
    jaw_correlation: float  # Pearson r of jaw_open vs the smoothed target
    silence_voiced: float  # mean voiced on silence frames
    speech_voiced: float  # mean voiced on speech frames

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class SpeakerMetrics:
    """Metrics of one held-out real speaker."""

    speaker: str
    metrics: Metrics


@dataclass(frozen=True, slots=True)
class Predictions:
    """The model's frames for one utterance next to its reference labels."""

    visemes: np.ndarray  # (N,) i64 predicted
    controls: np.ndarray  # (N, 5) f32: jaw, width, round, close, voiced
    reference: np.ndarray  # (N,) i64 aligner labels
    targets: np.ndarray  # (N, 5) f32 smoothed targets


def frames_to_arrays(frames: list[MouthFrame]) -> tuple[np.ndarray, np.ndarray]:
    """MouthFrames → predicted visemes ``(N,) i64`` and controls ``(N, 5) f32``."""
    visemes = np.array([f.viseme for f in frames], np.int64)
    controls = np.array([(f.jaw_open, f.lip_width, f.lip_round, f.lip_close, f.voiced) for f in frames], np.float32)
    return visemes, controls.reshape(-1, 5)


def predict(model: AudioMouthModel, utt: Utterance) -> Predictions:
    """Run the runtime on one utterance and label its frames."""
    visemes, controls = frames_to_arrays(model.infer(to_16k(utt)))
    reference = frame_visemes(utt.segments, len(visemes))
    return Predictions(visemes, controls, reference, mouth_targets(reference))


def _segments_closed(pred: Predictions) -> tuple[int, int]:
    """(PP segments with a closed frame, PP segments) of one utterance."""
    is_pp = pred.reference == PP
    edges = np.flatnonzero(np.diff(np.concatenate([[0], is_pp.astype(np.int8), [0]])))
    closed = sum(bool((pred.controls[a:b, 3] > 0.5).any()) for a, b in zip(edges[::2], edges[1::2], strict=True))
    return closed, len(edges) // 2


def score(preds: list[Predictions]) -> Metrics:
    """Aggregate frame metrics over utterances."""
    vis = np.concatenate([p.visemes for p in preds])
    ref = np.concatenate([p.reference for p in preds])
    ctl = np.concatenate([p.controls for p in preds])
    tgt = np.concatenate([p.targets for p in preds])
    closed = ctl[:, 3] > 0.5
    is_pp = ref == PP
    seg = [_segments_closed(p) for p in preds]
    seg_total = sum(s[1] for s in seg)
    silence = ref == SIL
    return Metrics(
        utterances=len(preds),
        frames=len(ref),
        accuracy=float((vis == ref).mean()),
        coarse_accuracy=float((_COARSE[vis] == _COARSE[ref]).mean()),
        bilabial_recall=float(closed[is_pp].mean()) if is_pp.any() else float("nan"),
        bilabial_precision=float(is_pp[closed].mean()) if closed.any() else float("nan"),
        bilabial_segment_recall=sum(s[0] for s in seg) / seg_total if seg_total else float("nan"),
        jaw_correlation=float(np.corrcoef(ctl[:, 0], tgt[:, 0])[0, 1]),
        silence_voiced=float(ctl[silence, 4].mean()) if silence.any() else float("nan"),
        speech_voiced=float(ctl[~silence, 4].mean()) if (~silence).any() else float("nan"),
    )


def evaluate(model: AudioMouthModel, utterances: list[Utterance]) -> Metrics:
    """Metrics of ``model`` on ``utterances``."""
    return score([predict(model, u) for u in utterances])


def real_time_factor(path: Path, seconds: float, clock: Callable[[], float], seed: int = 0) -> float:
    """Audio seconds per wall second (features + model, one thread, offline ``infer``) on noise."""
    model = AudioMouthModel.load(path, threads=1)
    rng = np.random.default_rng(seed)
    pcm = (0.1 * rng.standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)
    model.infer(pcm[:SAMPLE_RATE])  # warm-up
    start = clock()
    model.infer(pcm)
    return seconds / max(clock() - start, 1e-9)


def aligner_agreement(utterances: list[Utterance], aligner: object) -> float:
    """Frame agreement of espeak's own phoneme timings with pocketsphinx's forced alignment of the same audio.

    A ceiling on what frame accuracy against either aligner can mean: the references disagree this much.
    ``aligner`` is an ``asterisk.PocketsphinxAligner``; utterances whose words it cannot align are skipped.
    """
    from livepuppet.export.audio.asterisk import PocketsphinxAligner, normalize_text

    assert isinstance(aligner, PocketsphinxAligner)
    hits = total = 0
    for utt in utterances:
        words = normalize_text(utt.text)
        if not words or not aligner.known(words):
            continue
        segments = aligner.align(utt.audio, utt.rate, words)
        if segments is None:
            continue
        n = int(len(utt.audio) / utt.rate / 0.01)
        hits += int((frame_visemes(utt.segments, n) == frame_visemes(segments, n)).sum())
        total += n
    return hits / total if total else float("nan")
