"""The model card: JSON (machine-readable metrics) and Markdown (architecture, data, reproduction, metrics)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from livepuppet.export.audio.corpus import HOLDOUT_VARIANTS, HOLDOUT_VOICES, LANGUAGES, TRAIN_VARIANTS
from livepuppet.export.audio.evaluate import Metrics, SpeakerMetrics
from livepuppet.export.audio.model import NetConfig
from livepuppet.export.audio.voice_prompts import PROMPT_SETS


@dataclass(frozen=True, slots=True)
class CardFacts:
    """Everything the card reports about one training run."""

    command: str
    seed: int
    net: NetConfig
    parameters: int
    onnx_bytes: int
    train_utterances: int
    train_espeak: int
    train_asterisk: int
    train_prompts: int  # utterances from the other languages' prompt sets
    train_speakers: tuple[str, ...]  # real speakers trained on
    speakers: tuple[SpeakerMetrics, ...]  # held-out real speakers
    speed_perturb: bool
    real_share: float | None  # share of training crops from real recordings (None: proportional)
    train_audio_minutes: float
    steps: int
    train_seconds: float
    total_seconds: float
    espeak: Metrics
    asterisk: Metrics | None
    real_time_factor: float
    aligner_agreement: float  # espeak timings vs pocketsphinx on the held-out espeak audio
    final_loss: float
    hardware: str


def write_card(facts: CardFacts, markdown_path: Path) -> tuple[Path, Path]:
    """Write ``<name>.md`` and ``<name>.json``; returns both paths."""
    json_path = markdown_path.with_suffix(".json")
    data = {
        "command": facts.command, "seed": facts.seed, "parameters": facts.parameters, "onnx_bytes": facts.onnx_bytes,
        "context_frames": facts.net.context, "lookahead_frames": facts.net.lookahead, "hidden": facts.net.hidden,
        "train_utterances": facts.train_utterances, "train_audio_minutes": round(facts.train_audio_minutes, 1),
        "steps": facts.steps, "train_seconds": round(facts.train_seconds, 1),
        "total_seconds": round(facts.total_seconds, 1), "final_loss": round(facts.final_loss, 4),
        "real_time_factor_1_thread": round(facts.real_time_factor, 1), "hardware": facts.hardware,
        "aligner_agreement": round(facts.aligner_agreement, 3),
        "heldout_espeak": facts.espeak.as_dict(),
        "heldout_asterisk": facts.asterisk.as_dict() if facts.asterisk else None,
        "train_real_speakers": list(facts.train_speakers),
        "heldout_speakers": {s.speaker: s.metrics.as_dict() for s in facts.speakers},
    }  # fmt: skip
    json_path.write_text(json.dumps(_finite(data), indent=2) + "\n")
    markdown_path.write_text(_markdown(facts))
    return markdown_path, json_path


_HEADER = (
    "| set | utts / frames | accuracy (15) | coarse (7) | bilabial recall | bilabial precision | PP segment recall "
    "| jaw r | voiced (sil) | voiced (speech) |\n|---|---|---|---|---|---|---|---|---|---|"
)


def _finite(value: object) -> object:
    """NaN (a metric with no frames to count) → null, so the JSON stays standard."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def _row(name: str, m: Metrics | None) -> str:
    if m is None:
        return f"| {name} | – | – | – | – | – | – | – | – | – |"
    return (
        f"| {name} | {m.utterances} / {m.frames} | {m.accuracy:.3f} | {m.coarse_accuracy:.3f} | "
        f"{m.bilabial_recall:.3f} | {m.bilabial_precision:.3f} | {m.bilabial_segment_recall:.3f} | "
        f"{m.jaw_correlation:.3f} | {m.silence_voiced:.3f} | {m.speech_voiced:.3f} |"
    )


def _speed(f: CardFacts) -> str:
    if not f.speed_perturb:
        return ""
    return ", speed perturbation (half of the augmented copies play 0.87–1.15× as long; labels stretch with them)"


def _share(f: CardFacts) -> str:
    if f.real_share is None:
        return "Training crops are drawn uniformly over the utterances."
    return f"Real recordings supply {f.real_share:.0%} of the training crops."


def _speaker_lines(f: CardFacts) -> str:
    voices = {s.speaker: s for s in PROMPT_SETS}
    rows = []
    for s in f.speakers:
        known = voices.get(s.speaker)
        where = f" ({known.voice}, {known.sounds.name})" if known else ""
        rows.append(_row(f"real speaker {s.speaker}{where}, never trained on", s.metrics))
    return "\n".join(rows)


def _markdown(f: CardFacts) -> str:
    langs = ", ".join(f"{lang} ({weight:.0%})" for lang, _, weight in LANGUAGES)
    lookahead_ms = (f.net.lookahead + 0.5) * 10
    return f"""# Model card: audio → mouth (`assets/audio_mouth.onnx`)

Streaming audio-to-mouth model for livepuppet: 16 kHz mono speech in, one mouth frame per 10 ms out —
15 Oculus/Meta visemes (`sil PP FF TH DD kk CH SS nn RR aa E I O U`) plus continuous `jaw_open`, `lip_width`,
`lip_round`, `lip_close` and `voiced`. Runtime: `livepuppet.engine.speech.mouth_model` (NumPy log-mel + onnxruntime).

## Architecture
- Features (NumPy, `engine/audio_features.py`): log of 40 HTK mel bands (60–7600 Hz) of a 25 ms Hann window
  ending at each 10 ms hop, 512-point FFT. Causal framing: a frame never reads audio after its hop.
- Network: per-band normalisation (training statistics, inside the graph) → causal Conv1d 40→{f.net.conv_channels}
  (kernel {f.net.context + 1}: this hop and {f.net.context} past hops) → ReLU → 1×1 conv → ReLU →
  GRU({f.net.hidden}) → linear heads (15 viseme logits + 5 controls; softmax, sigmoid / tanh for lip_width).
- Causal with a fixed output delay of {f.net.lookahead} hops: look-ahead {lookahead_ms:.0f} ms from a hop's centre
  to the newest sample it uses. The GRU state is an explicit input/output, so streaming and offline runs agree.
- {f.parameters:,} parameters; ONNX file {f.onnx_bytes / 1024:.0f} KiB (opset 17, one GRU op).

## Training data (all generated or aligned on this machine; nothing downloaded)
- **espeak-ng** via ctypes on libespeak-ng (`espeakINITIALIZE_PHONEME_EVENTS`, IPA phoneme names): random
  sentences from built-in word lists in {langs}; voice variants {", ".join(v or "default" for v in TRAIN_VARIANTS)};
  rate 120–260 words/min, pitch and pitch range 15–85. Phoneme start events give the segmentation.
- **Real speech**: Debian `asterisk-core-sounds-en-wav` prompts (one female speaker, 8 kHz, CC-BY-SA-3.0) with
  their transcripts (`asterisk-core-sounds-en`), force-aligned by pocketsphinx 5 (en-us acoustic model).
  85 % of the prompts (split by CRC32 of the name) train; 15 % are held out.
- **More real speakers**: the Spanish, French, Italian and Russian asterisk prompt sets (Debian
  {", ".join(f"`{p}`" for s in PROMPT_SETS for p in s.packages)}; one speaker each, 8 kHz, CC-BY-SA-3.0) with
  their transcripts, force-aligned by `export/audio/cross_align.py`: espeak-ng's letter-to-sound rules give each
  word's IPA phones, each phone stands in for its nearest CMU phones in pocketsphinx's dictionary, and the en-us
  acoustic model aligns them (checked on 82 of the English prompts, where the CMU dictionary gives a reference:
  0.88 of the frames get the same viseme, 0.97 of its bilabial frames are bilabial here; DTW against espeak's
  synthesis, the other route tried, reached only 0.55 and 0.43).
  Real speakers trained on: {", ".join(f.train_speakers) or "none"};
  held out entirely: {", ".join(s.speaker for s in f.speakers) or "none"}.
- Phones → visemes: `engine/visemes.py` (IPA first-letter classes for espeak, CMU table for pocketsphinx).
  Continuous targets: a per-viseme shape table smoothed with a Gaussian coarticulation kernel (σ 20 ms; 8 ms
  for lip closure, held ≥ 0.9 inside p/b/m).
- Augmentation: random lead-in shift (0–300 ms), resampling round trips (11–44 kHz), telephone band
  (8 kHz + 300–3400 Hz), white/pink noise at 5–40 dB SNR, peak level −32…−0.5 dBFS{_speed(f)}. Each utterance
  is used clean and once augmented. {_share(f)}
- This run: {f.train_utterances} training utterances ({f.train_espeak} espeak, {f.train_asterisk} English asterisk,
  {f.train_prompts} other-language prompts),
  {f.train_audio_minutes:.0f} minutes of audio before augmentation.

## Held-out metrics (frame level against the aligners' labels; computed through the runtime)
Held-out espeak voices: {", ".join(HOLDOUT_VOICES)} (variants {", ".join(HOLDOUT_VARIANTS)} are never trained on,
in any language). Held-out real speech: the 15 % asterisk prompts. Bilabial recall: frames labelled PP where
`lip_close > 0.5`; precision: frames with `lip_close > 0.5` that are PP; segment recall: PP segments with at least
one closed frame. Jaw r: Pearson correlation of `jaw_open` with the smoothed target. Coarse accuracy groups
visemes into rest / closed / labiodental / tongue / open / spread / round.

{_HEADER}
{_row("espeak, held-out voices", f.espeak)}
{_row("asterisk, held-out prompts", f.asterisk)}
{_speaker_lines(f)}

Labels are themselves approximate (espeak's event times, pocketsphinx's ~10 ms boundary error), and boundaries
shifted by one hop count as errors. The espeak figures measure agreement with espeak's own timing rules, which
the model learned from other voices; two independent labelers agree far less: on the held-out espeak audio,
espeak's phoneme events and pocketsphinx's forced alignment of the same audio agree on
**{f.aligner_agreement:.3f}** of the frames.
The real-speaker rows (pocketsphinx labels; for other languages through espeak's phones) are therefore the more
honest real-world figures; the held-out speakers' rows measure voices the model has never heard.

## Speed
Features + model, offline `infer`, one thread: **{f.real_time_factor:.0f}× real time** ({f.hardware}).
See `bench/bench_audio.py` for streaming with 20 ms chunks.

## Reproduce
```
{f.command}
```
Seed {f.seed}: {f.steps} optimizer steps in {f.train_seconds / 60:.1f} min (final loss {f.final_loss:.3f});
whole command {f.total_seconds / 60:.1f} min including synthesis, alignment, export and evaluation.
torch is needed only to train/export (`pip install -e .[export]`); training is not bit-reproducible across
machines because it stops on a wall-clock budget.

## Limits
- Trained on synthetic speech and {len(f.train_speakers)} real recording sets ({", ".join(f.train_speakers)}), all
  read telephone prompts; singing, shouting, conversational speech and strong accents are untested. Languages
  other than those listed get the closest phone classes.
- No speaker/emotion output; the mouth follows the phones, not prosody.
"""
