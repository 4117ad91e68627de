"""The training and held-out corpora: espeak-ng across voices/languages/rates/pitch, and aligned real prompts.

Real speech: the English asterisk prompts (pocketsphinx with the CMU dictionary, 15 % of prompts held out) and
the other languages' prompt sets (``voice_prompts``; whole speakers held out).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from livepuppet.export.audio.asterisk import PocketsphinxAligner, is_held_out, load_prompts
from livepuppet.export.audio.cross_align import CrossLingualAligner
from livepuppet.export.audio.espeak import EspeakSynth, VoiceSettings
from livepuppet.export.audio.phonemize import Phonemizer
from livepuppet.export.audio.sentences import make_sentence
from livepuppet.export.audio.speech_data import Utterance
from livepuppet.export.audio.voice_prompts import PROMPT_SETS, PromptSet, aligned_utterances
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
class SpeakerSet:
    """All aligned utterances of one real speaker held out of training."""

    speaker: str
    utterances: list[Utterance]


@dataclass(frozen=True, slots=True)
class Corpus:
    """Utterances split for training and for held-out evaluation."""

    train: list[Utterance]
    holdout_espeak: list[Utterance]
    holdout_asterisk: list[Utterance]
    holdout_speakers: tuple[SpeakerSet, ...] = ()


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


def prompt_sets_split(
    synth: EspeakSynth, sets: tuple[PromptSet, ...] = PROMPT_SETS, quiet: bool = False, limit: int | None = None
) -> tuple[list[Utterance], tuple[SpeakerSet, ...]]:
    """Aligned prompts of every set → (training utterances, one ``SpeakerSet`` per held-out speaker)."""
    aligner = CrossLingualAligner(Phonemizer(synth), PocketsphinxAligner())
    train: list[Utterance] = []
    held: list[SpeakerSet] = []
    for prompt_set in tqdm(sets, desc="prompt sets (cross-lingual alignment)", disable=quiet, dynamic_ncols=True):
        utterances = aligned_utterances(prompt_set, aligner, limit)
        if prompt_set.held_out:
            held.append(SpeakerSet(prompt_set.speaker, utterances))
        else:
            train += utterances
    return train, tuple(held)


def build_corpus(
    espeak_count: int, holdout_count: int, seed: int, use_asterisk: bool = True, quiet: bool = False,
    asterisk_limit: int | None = None, prompt_sets: tuple[PromptSet, ...] = PROMPT_SETS,
) -> Corpus:
    """Synthesize and align everything the training run needs."""
    synth = EspeakSynth()
    train = espeak_train(synth, espeak_count, seed, quiet)
    holdout = espeak_holdout(synth, holdout_count, seed)
    held_asterisk: list[Utterance] = []
    held_speakers: tuple[SpeakerSet, ...] = ()
    if use_asterisk:
        real_train, held_asterisk = asterisk_split(quiet, asterisk_limit)
        train += real_train
    if prompt_sets:
        more_train, held_speakers = prompt_sets_split(synth, prompt_sets, quiet, asterisk_limit)
        train += more_train
    return Corpus(train=train, holdout_espeak=holdout, holdout_asterisk=held_asterisk, holdout_speakers=held_speakers)
