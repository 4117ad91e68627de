"""Two (or more) audio→mouth ONNX models side by side on the same held-out sets, per speaker, in one run.

``python -m livepuppet.export.audio.compare_models OLD.onnx NEW.onnx [--json out.json]`` prints a Markdown table:
every held-out espeak voice, the held-out English asterisk prompts and every held-out real speaker
(``voice_prompts.PROMPT_SETS``), with bilabial-closure recall and viseme accuracy for each model.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from livepuppet.engine.speech.mouth_model import AudioMouthModel
from livepuppet.export.audio.corpus import HOLDOUT_VOICES, asterisk_split, espeak_holdout, prompt_sets_split
from livepuppet.export.audio.espeak import EspeakSynth
from livepuppet.export.audio.evaluate import Metrics, evaluate
from livepuppet.export.audio.speech_data import Utterance
from livepuppet.export.audio.voice_prompts import PROMPT_SETS


@dataclass(frozen=True, slots=True)
class HeldOutSet:
    """One row of the comparison: a name, what kind of speech it is, its utterances."""

    name: str
    kind: str  # "synthetic" or "real"
    utterances: list[Utterance]


def held_out_sets(seed: int = 0, holdout_count: int = 60, quiet: bool = True) -> list[HeldOutSet]:
    """The training recipe's held-out data (same seed → the same espeak sentences), split per speaker."""
    synth = EspeakSynth()
    espeak = espeak_holdout(synth, holdout_count, seed)
    sets = [HeldOutSet("espeak, all held-out voices", "synthetic", espeak)]
    sets += [HeldOutSet(f"espeak {v}", "synthetic", [u for u in espeak if u.speaker == v]) for v in HOLDOUT_VOICES]
    _, asterisk = asterisk_split(quiet)
    sets.append(HeldOutSet("allison-en (held-out prompts; speaker trained on)", "real", asterisk))
    _, speakers = prompt_sets_split(synth, tuple(s for s in PROMPT_SETS if s.held_out), quiet=quiet)
    sets += [HeldOutSet(f"{s.speaker} (speaker never trained on)", "real", s.utterances) for s in speakers]
    return sets


def table(models: list[str], sets: list[HeldOutSet], results: list[list[Metrics]]) -> str:
    """Markdown: one row per set, bilabial recall / precision / segment recall / accuracy / coarse per model."""
    head = "| set | utts / frames | " + " | ".join(
        f"{m}: bilabial recall | precision | PP segments | accuracy (15) | coarse (7)" for m in models
    )
    lines = [head + " |", "|---|---|" + "---|" * (5 * len(models))]
    for k, s in enumerate(sets):
        first = results[0][k]
        cells = []
        for per_model in results:
            m = per_model[k]
            cells.append(f"{m.bilabial_recall:.3f} | {m.bilabial_precision:.3f} | {m.bilabial_segment_recall:.3f} | "
                         f"{m.accuracy:.3f} | {m.coarse_accuracy:.3f}")  # fmt: skip
        lines.append(f"| {s.name} | {first.utterances} / {first.frames} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Evaluate every model on every held-out set; print the table, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("models", nargs="+", help="ONNX files (e.g. the previous and the new model)")
    parser.add_argument("--names", nargs="*", help="column names (default: file names)")
    parser.add_argument("--json", help="write the metrics here")
    args = parser.parse_args(argv)
    names = args.names or [Path(m).name for m in args.models]
    sets = held_out_sets()
    results = [[evaluate(AudioMouthModel.load(Path(m)), s.utterances) for s in sets] for m in args.models]
    print(table(names, sets, results))
    if args.json:
        data = {
            name: {s.name: {"kind": s.kind, **r.as_dict()} for s, r in zip(sets, per_model, strict=True)}
            for name, per_model in zip(names, results, strict=True)
        }
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
