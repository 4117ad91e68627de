"""``livepuppet train-audio``: reproduce the shipped audio→mouth model (data, training, ONNX export, model card)."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

from livepuppet.errors import DependencyError, InputError

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "assets" / "audio_mouth.onnx"


def cmd_train_audio(args: argparse.Namespace) -> int:
    try:
        import torch
    except ImportError as exc:
        raise DependencyError("training needs torch and onnx: pip install -e '.[export]'") from exc
    from livepuppet.export.audio.recipe import RecipeConfig, run_recipe
    from livepuppet.export.audio.train import TrainConfig

    if args.minutes <= 0:
        raise InputError("--minutes must be positive")
    torch.set_num_threads(max(1, args.threads))
    output = Path(args.output)
    card = Path(args.card) if args.card else output.with_suffix(".md")
    more = args.real_voices == "all"  # "en": the first recipe (one real speaker, no speed perturbation)
    config = RecipeConfig(
        espeak_utterances=args.espeak_utterances,
        use_prompt_sets=more,
        speed_perturb=more,
        train=replace(TrainConfig(), minutes=args.minutes, seed=args.seed, real_share=0.35 if more else None),
    )
    command = "livepuppet train-audio " + shlex.join(sys.argv[2:]) if len(sys.argv) > 2 else "livepuppet train-audio"
    result = run_recipe(config, output, card, time.monotonic, command=command, quiet=args.quiet)
    e = result.espeak
    print(f"wrote {output} ({output.stat().st_size / 1024:.0f} KiB) and {card}")
    print(f"held-out espeak: accuracy {e.accuracy:.3f}, coarse {e.coarse_accuracy:.3f}, "
          f"bilabial recall {e.bilabial_recall:.3f}, jaw r {e.jaw_correlation:.3f}")
    if result.asterisk is not None:
        a = result.asterisk
        print(f"held-out asterisk: accuracy {a.accuracy:.3f}, coarse {a.coarse_accuracy:.3f}, "
              f"bilabial recall {a.bilabial_recall:.3f}, jaw r {a.jaw_correlation:.3f}")
    for speaker in result.speakers:
        m = speaker.metrics
        print(f"held-out speaker {speaker.speaker}: accuracy {m.accuracy:.3f}, coarse {m.coarse_accuracy:.3f}, "
              f"bilabial recall {m.bilabial_recall:.3f}, jaw r {m.jaw_correlation:.3f}")
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    """Add ``train-audio``."""
    p = sub.add_parser("train-audio", parents=[common], help="train and export the audio→mouth model (needs torch)")
    p.add_argument("-o", "--output", default=str(DEFAULT_OUTPUT), help="ONNX file to write (default: the shipped one)")
    p.add_argument("--card", help="model card path (default: OUTPUT with .md, plus .json)")
    p.add_argument("--minutes", type=float, default=18.0, help="training-loop wall-time budget (default 18)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--espeak-utterances", type=int, default=1500, help="synthesized training sentences")
    p.add_argument("--real-voices", choices=("all", "en"), default="all",
                   help="real speech to train on: all asterisk prompt sets (default) or the English one only")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1; more thrash on a shared CPU)")
    p.set_defaults(func=cmd_train_audio)
