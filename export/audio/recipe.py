"""The whole ``train-audio`` recipe: corpus → examples → training → ONNX → held-out evaluation → model card."""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
from livepuppet.engine.speech.mouth_model import AudioMouthModel
from livepuppet.errors import LivepuppetError
from livepuppet.export.audio.asterisk import PocketsphinxAligner, prompts_available
from livepuppet.export.audio.corpus import build_corpus
from livepuppet.export.audio.dataset import Example, make_example
from livepuppet.export.audio.evaluate import Metrics, SpeakerMetrics, aligner_agreement, evaluate, real_time_factor
from livepuppet.export.audio.model_card import CardFacts, write_card
from livepuppet.export.audio.speech_data import Utterance
from livepuppet.export.audio.to_onnx import export_onnx, torch_reference
from livepuppet.export.audio.train import TrainConfig, TrainResult, train
from livepuppet.export.audio.voice_prompts import PROMPT_SETS
from tqdm import tqdm

MAX_ONNX_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class RecipeConfig:
    """Data sizes and training settings of one reproducible run."""

    espeak_utterances: int = 1500
    holdout_utterances: int = 60
    use_asterisk: bool = True
    use_prompt_sets: bool = True  # the other languages' real speakers (voice_prompts.PROMPT_SETS)
    asterisk_limit: int | None = None  # first N prompts of each real set only (smoke tests)
    augmented_copies: int = 1  # augmented versions per utterance, besides the clean one
    speed_perturb: bool = True  # some augmented copies play 0.87–1.15× as long
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass(frozen=True, slots=True)
class RecipeResult:
    """Where the outputs went and what they measured."""

    onnx_path: Path
    card_path: Path | None
    result: TrainResult
    espeak: Metrics
    asterisk: Metrics | None
    speakers: tuple[SpeakerMetrics, ...]  # held-out real speakers
    export_max_error: float


def build_examples(utterances: list[Utterance], config: RecipeConfig, seed: int, quiet: bool) -> list[Example]:
    """Clean + augmented examples for every training utterance."""
    rng = np.random.default_rng(seed)
    net = config.train.net
    examples = []
    for utt in tqdm(utterances, desc="features", disable=quiet, dynamic_ncols=True):
        examples.append(make_example(utt, net.context, net.lookahead))
        for _ in range(config.augmented_copies):
            examples.append(make_example(utt, net.context, net.lookahead, rng, config.speed_perturb))
    return examples


def check_export(result: TrainResult, path: Path, example: Example) -> float:
    """Max |ONNX − torch| over probabilities and controls on one example; raises if above 1e-4."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    h0 = np.zeros((1, 1, result.net.config.hidden), np.float32)
    probs, mouth, _ = session.run(None, {"mel": example.mel[None], "h0": h0})
    ref_probs, ref_mouth = torch_reference(result.net, example.mel)
    error = float(max(np.abs(probs[0] - ref_probs).max(), np.abs(mouth[0] - ref_mouth).max()))
    if error > 1e-4:
        raise LivepuppetError(f"ONNX export differs from torch by {error:.2e}")
    return error


def run_recipe(
    config: RecipeConfig,
    onnx_path: Path,
    card_path: Path | None,
    clock: Callable[[], float],
    command: str = "livepuppet train-audio",
    quiet: bool = False,
) -> RecipeResult:
    """Run everything; writes the ONNX model and (if ``card_path``) the Markdown + JSON card."""
    start = clock()
    seed = config.train.seed
    corpus = build_corpus(config.espeak_utterances, config.holdout_utterances, seed, config.use_asterisk, quiet,
                          config.asterisk_limit, PROMPT_SETS if config.use_prompt_sets else ())
    examples = build_examples(corpus.train, config, seed, quiet)
    result = train(examples, config.train, clock, quiet)
    params = sum(p.numel() for p in result.net.parameters())
    export_onnx(result.net, onnx_path, {"seed": str(seed), "steps": str(result.steps), "parameters": str(params)})
    size = onnx_path.stat().st_size
    if size > MAX_ONNX_BYTES:
        raise LivepuppetError(f"{onnx_path} is {size} bytes, over the 1 MiB budget: shrink the network")
    error = check_export(result, onnx_path, examples[0])
    model = AudioMouthModel.load(onnx_path)
    espeak_metrics = evaluate(model, corpus.holdout_espeak)
    asterisk_metrics = evaluate(model, corpus.holdout_asterisk) if corpus.holdout_asterisk else None
    speakers = tuple(
        SpeakerMetrics(s.speaker, evaluate(model, s.utterances)) for s in corpus.holdout_speakers if s.utterances
    )
    if card_path is not None:
        rtf = real_time_factor(onnx_path, 60.0, clock)
        agreement = (
            aligner_agreement(corpus.holdout_espeak, PocketsphinxAligner()) if prompts_available() else float("nan")
        )
        facts = CardFacts(
            command=command, seed=seed, net=config.train.net, parameters=params, onnx_bytes=size,
            train_utterances=len(corpus.train),
            train_espeak=sum(u.source == "espeak" for u in corpus.train),
            train_asterisk=sum(u.source == "asterisk" for u in corpus.train),
            train_prompts=sum(u.source == "prompts" for u in corpus.train),
            train_speakers=tuple(sorted({u.speaker for u in corpus.train if u.source != "espeak"})),
            speakers=speakers, speed_perturb=config.speed_perturb, real_share=config.train.real_share,
            train_audio_minutes=sum(len(u.audio) / u.rate for u in corpus.train) / 60.0,
            steps=result.steps, train_seconds=result.seconds, total_seconds=clock() - start,
            espeak=espeak_metrics, asterisk=asterisk_metrics, real_time_factor=rtf, aligner_agreement=agreement,
            final_loss=float(np.mean(result.losses[-50:])),
            hardware=f"{platform.processor() or platform.machine()}, shared 2-core CPU",
        )  # fmt: skip
        write_card(facts, card_path)
    return RecipeResult(onnx_path, card_path, result, espeak_metrics, asterisk_metrics, speakers, error)
