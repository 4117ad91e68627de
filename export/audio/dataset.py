"""Frame labels, continuous mouth targets and model-ready examples (log-mel with context and look-ahead padding)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from livepuppet.engine.speech.features import HOP, SAMPLE_RATE, SILENCE_VALUE, log_mel, resample
from livepuppet.engine.speech.visemes import PP, SIL, VISEME_SHAPES
from livepuppet.export.audio.augment import augment
from livepuppet.export.audio.speech_data import Segment, Utterance
from scipy.ndimage import gaussian_filter1d

HOP_S = HOP / SAMPLE_RATE
SHAPE_TABLE = np.array(
    [(s.jaw_open, s.lip_width, s.lip_round, s.lip_close) for s in VISEME_SHAPES], np.float32
)  # (15, 4)
COARTICULATION_SIGMA = (2.0, 2.0, 2.0, 0.8, 2.0)  # frames (10 ms): jaw, width, round, close, voiced
SPEED_PERTURB_P = 0.5  # share of augmented copies that are speed-perturbed
SPEED_PERTURB_RANGE = (0.87, 1.15)  # duration factor


def frame_visemes(
    segments: tuple[Segment, ...], n_frames: int, shift_s: float = 0.0, stretch: float = 1.0
) -> np.ndarray:
    """Viseme at each hop centre ``(i + 0.5) · 10 ms``: ``(n_frames,) i64``; outside every segment it is ``sil``.

    Segment times are scaled by ``stretch`` (speed perturbation) and then delayed by ``shift_s``.
    """
    labels = np.full(n_frames, SIL, np.int64)
    centres = (np.arange(n_frames) + 0.5) * HOP_S
    for seg in segments:
        inside = (centres >= seg.start * stretch + shift_s) & (centres < seg.end * stretch + shift_s)
        labels[inside] = seg.viseme
    return labels


def mouth_targets(visemes: np.ndarray) -> np.ndarray:
    """Per-frame controls from the viseme shape table, smoothed by a short coarticulation kernel: ``(n, 5) f32``.

    Columns: jaw_open, lip_width, lip_round, lip_close, voiced (1 during speech, 0 in silence).
    """
    raw = np.concatenate([SHAPE_TABLE[visemes], (visemes != SIL).astype(np.float32)[:, None]], axis=1)
    out = np.empty_like(raw)
    for c, sigma in enumerate(COARTICULATION_SIGMA):
        out[:, c] = gaussian_filter1d(raw[:, c], sigma, mode="nearest")
    out[visemes == PP, 3] = np.maximum(out[visemes == PP, 3], 0.9)  # a bilabial is closed throughout
    return out.astype(np.float32)


@dataclass(frozen=True, slots=True)
class Example:
    """One utterance ready for the model: step ``j`` reads ``mel[j : j + context + 1]`` and predicts hop ``j − L``."""

    mel: np.ndarray  # (context + N + L, N_MELS) f32: silence context, N hops, L look-ahead hops of padding
    visemes: np.ndarray  # (N,) i64
    targets: np.ndarray  # (N, 5) f32
    source: str


def to_16k(utt: Utterance) -> np.ndarray:
    """The utterance's audio at the model rate."""
    return resample(utt.audio, utt.rate, SAMPLE_RATE)


def make_example(
    utt: Utterance,
    context: int,
    lookahead: int,
    rng: np.random.Generator | None = None,
    speed_perturb: bool = True,
) -> Example:
    """Features and labels of one utterance; with ``rng``: speed perturbation, a lead-in shift, waveform augmentation.

    Speed perturbation plays the audio ``stretch`` times longer (tempo, pitch and formants move together, like a
    different vocal tract: the usual speaker-robustness trick for speech models); the labels stretch with it.
    """
    audio = to_16k(utt)
    shift = 0
    stretch = 1.0
    if rng is not None and speed_perturb and rng.random() < SPEED_PERTURB_P:
        rate = round(SAMPLE_RATE * float(rng.uniform(*SPEED_PERTURB_RANGE)) / 400) * 400  # short polyphase filters
        stretch = rate / SAMPLE_RATE
        audio = resample(audio, SAMPLE_RATE, rate)  # the same waveform, then read at 16 kHz
    if rng is not None:
        shift = int(rng.integers(0, 4_800)) if rng.random() < 0.5 else int(rng.integers(0, HOP))
        audio = augment(np.concatenate([np.zeros(shift, np.float32), audio]), rng)
    hops = -(-len(audio) // HOP)
    padded = np.zeros((hops + lookahead) * HOP, np.float32)
    padded[: len(audio)] = audio
    mel = log_mel(padded)
    mel = np.concatenate([np.full((context, mel.shape[1]), SILENCE_VALUE, np.float32), mel])
    visemes = frame_visemes(utt.segments, hops, shift / SAMPLE_RATE, stretch)
    return Example(mel=mel, visemes=visemes, targets=mouth_targets(visemes), source=utt.source)


@dataclass(frozen=True, slots=True)
class Batch:
    """Random crops stacked for training."""

    mel: np.ndarray  # (B, T + context, N_MELS) f32
    visemes: np.ndarray  # (B, T) i64 (−1 where masked)
    targets: np.ndarray  # (B, T, 5) f32
    mask: np.ndarray  # (B, T) bool


def sample_batch(
    examples: list[Example], batch: int, steps: int, context: int, lookahead: int, rng: np.random.Generator,
    weights: np.ndarray | None = None,
) -> Batch:
    """``batch`` random crops of ``steps`` model steps; step ``j``'s label is hop ``j − lookahead``.

    ``weights`` (``(len(examples),) f64``, sum 1) are the examples' sampling probabilities; None: uniform.
    """
    n_mels = examples[0].mel.shape[1]
    mel = np.full((batch, steps + context, n_mels), SILENCE_VALUE, np.float32)
    visemes = np.full((batch, steps), -1, np.int64)
    targets = np.zeros((batch, steps, 5), np.float32)
    for b in range(batch):
        pick = rng.choice(len(examples), p=weights) if weights is not None else rng.integers(len(examples))
        ex = examples[int(pick)]
        total = len(ex.mel) - context  # model steps in this example
        start = 0 if (total <= steps or rng.random() < 0.3) else int(rng.integers(0, total - steps + 1))
        count = min(steps, total - start)
        mel[b, : count + context] = ex.mel[start : start + count + context]
        hop = np.arange(start, start + count) - lookahead
        valid = (hop >= 0) & (hop < len(ex.visemes))
        visemes[b, :count][valid] = ex.visemes[hop[valid]]
        targets[b, :count][valid] = ex.targets[hop[valid]]
    return Batch(mel=mel, visemes=visemes, targets=targets, mask=visemes >= 0)


def source_weights(examples: list[Example], real_share: float | None) -> np.ndarray | None:
    """Sampling probabilities giving real recordings (every source but espeak) ``real_share`` of the crops."""
    if real_share is None:
        return None
    real = np.array([ex.source != "espeak" for ex in examples])
    if real.all() or not real.any():
        return None
    weights = np.where(real, real_share / real.sum(), (1.0 - real_share) / (~real).sum())
    return weights / weights.sum()
