"""The training and held-out corpora: espeak-ng across voices/languages/rates/pitch, and aligned asterisk prompts."""

from __future__ import annotations

import random
from dataclasses import dataclass

from livepuppet.export.audio.asterisk import PocketsphinxAligner, is_held_out, load_prompts
from livepuppet.export.audio.espeak import EspeakSynth, VoiceSettings
from livepuppet.export.audio.sentences import make_sentence
from livepuppet.export.audio.speech_data import Utterance
from tqdm import tqdm

# (espeak language, sentence word list, sampling weight)
LANGUAGES: tuple[tuple[str, str, float], ...] = (
    ("en", "en", 0.30),
    ("en-us", "en", 0.25),
    ("de", "de", 0.10),
    ("fr", "fr", 0.10),
    ("es", "es", 0.10),
    ("it", "it", 0.10),
    ("nl", "nl", 0.05),
)
TRAIN_VARIANTS: tuple[str, ...] = (
    "", "m1", "m2", "m3", "m4", "m5", "m7", "f1", "f2", "f3", "f4", "klatt", "klatt3", "Andy", "Annie", "croak",
)  # fmt: skip
HOLDOUT_VARIANTS: tuple[str, ...] = ("m6", "f5")  # never used for training, in any language
HOLDOUT_VOICES: tuple[str, ...] = ("en+m6", "en-us+f5")  # the model card's held-out espeak voices


@dataclass(frozen=True, slots=True)
class Corpus:
    """Utterances split for training and for held-out evaluation."""

    train: list[Utterance]
    holdout_espeak: list[Utterance]
    holdout_asterisk: list[Utterance]


def random_settings(rng: random.Random, voice: str) -> VoiceSettings:
    """Rate 120–260 words/min, pitch and pitch range 15–85."""
    return VoiceSettings(voice, rate=rng.randint(120, 260), pitch=rng.randint(15, 85), pitch_range=rng.randint(15, 85))


def espeak_train(synth: EspeakSynth, count: int, seed: int, quiet: bool = False) -> list[Utterance]:
    """``count`` random sentences, each in a random training voice, language, rate and pitch."""
    rng = random.Random(seed)
    languages, wordlists, weights = zip(*LANGUAGES, strict=True)
    out = []
    for _ in tqdm(range(count), desc="espeak synthesis", disable=quiet, dynamic_ncols=True):
        k = rng.choices(range(len(languages)), weights=weights)[0]
        variant = rng.choice(TRAIN_VARIANTS)
        voice = languages[k] + (f"+{variant}" if variant else "")
        out.append(synth.synthesize(make_sentence(wordlists[k], rng), random_settings(rng, voice)))
    return out


def espeak_holdout(synth: EspeakSynth, count: int, seed: int) -> list[Utterance]:
    """English sentences in the held-out voices (``HOLDOUT_VOICES``), at varied rate and pitch."""
    rng = random.Random(seed + 1_000_003)
    return [
        synth.synthesize(make_sentence("en", rng), random_settings(rng, HOLDOUT_VOICES[i % len(HOLDOUT_VOICES)]))
        for i in range(count)
    ]


def asterisk_split(quiet: bool = False, limit: int | None = None) -> tuple[list[Utterance], list[Utterance]]:
    """Aligned asterisk prompts → (train, held out); prompts that fail to align are skipped."""
    aligner = PocketsphinxAligner()
    prompts = load_prompts()[:limit]
    train: list[Utterance] = []
    held: list[Utterance] = []
    for prompt in tqdm(prompts, desc="pocketsphinx alignment", disable=quiet, dynamic_ncols=True):
        utt = aligner.utterance(prompt)
        if utt is not None:
            (held if is_held_out(prompt.name) else train).append(utt)
    return train, held


def build_corpus(
    espeak_count: int, holdout_count: int, seed: int, use_asterisk: bool = True, quiet: bool = False,
    asterisk_limit: int | None = None,
) -> Corpus:
    """Synthesize and align everything the training run needs."""
    synth = EspeakSynth()
    train = espeak_train(synth, espeak_count, seed, quiet)
    holdout = espeak_holdout(synth, holdout_count, seed)
    held_asterisk: list[Utterance] = []
    if use_asterisk:
        real_train, held_asterisk = asterisk_split(quiet, asterisk_limit)
        train += real_train
    return Corpus(train=train, holdout_espeak=holdout, holdout_asterisk=held_asterisk)
