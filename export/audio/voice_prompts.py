"""More real voices: Debian's asterisk-core-sounds prompts in Spanish, French, Italian and Russian, with transcripts.

Each set is one speaker reading ~500 telephone prompts (8 kHz WAV, CC-BY-SA-3.0); the transcripts ship in the
language's companion package. They are aligned by ``cross_align`` (espeak-ng phones, pocketsphinx acoustics).
Whole speakers are held out, so the evaluation measures voices the model has never heard.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from livepuppet.export.audio.asterisk import Prompt, load_prompts, read_wav
from livepuppet.export.audio.cross_align import CrossLingualAligner
from livepuppet.export.audio.speech_data import Utterance

_SOUNDS = Path("/usr/share/asterisk/sounds")
_DOCS = Path("/usr/share/doc")


@dataclass(frozen=True, slots=True)
class PromptSet:
    """One speaker's prompt recordings, their transcript file and the espeak voice of their language."""

    speaker: str  # e.g. "june-fr"
    voice: str  # espeak-ng voice whose letter-to-sound rules phonemize the transcripts
    sounds: Path
    transcripts: Path
    packages: tuple[str, ...]  # Debian packages that install them
    held_out: bool  # never trained on: an unseen speaker for the model card

    def available(self) -> bool:
        """True when the WAVs and the transcript file are installed."""
        return self.sounds.is_dir() and self.transcripts.is_file()


def _core(speaker: str, voice: str, folder: str, language: str, held_out: bool) -> PromptSet:
    return PromptSet(
        speaker, voice, _SOUNDS / folder, _DOCS / f"asterisk-core-sounds-{language}/core-sounds-{language}.txt.gz",
        (f"asterisk-core-sounds-{language}-wav", f"asterisk-core-sounds-{language}"), held_out,
    )  # fmt: skip


PROMPT_SETS: tuple[PromptSet, ...] = (
    _core("allison-es", "es-419", "es_MX_f_Allison", "es", held_out=False),  # the English speaker, in Spanish
    _core("ivr-ru", "ru", "ru_RU_f_IvrvoiceRU", "ru", held_out=False),
    _core("june-fr", "fr", "fr_CA_f_June", "fr", held_out=True),
    _core("carlo-it", "it", "it_IT_m_Carlo", "it", held_out=True),
)


def packages(sets: tuple[PromptSet, ...] = PROMPT_SETS) -> list[str]:
    """The Debian packages every set needs (for error messages and the model card)."""
    return [name for s in sets for name in s.packages]


def aligned_utterances(
    prompt_set: PromptSet, aligner: CrossLingualAligner, limit: int | None = None
) -> list[Utterance]:
    """Every prompt of ``prompt_set`` that aligns, as utterances (source ``"prompts"``, speaker = the set's)."""
    out = []
    for prompt in load_prompts(prompt_set.sounds, prompt_set.transcripts)[:limit]:
        utt = align_prompt(prompt, prompt_set, aligner)
        if utt is not None:
            out.append(utt)
    return out


def align_prompt(prompt: Prompt, prompt_set: PromptSet, aligner: CrossLingualAligner) -> Utterance | None:
    """One prompt aligned, or None when its transcript does not align to the recording."""
    audio, rate = read_wav(prompt.path)
    segments = aligner.align(audio, rate, prompt.text, prompt_set.voice)
    if segments is None:
        return None
    return Utterance(audio=audio, rate=rate, segments=segments, source="prompts", speaker=prompt_set.speaker,
                     text=prompt.text)  # fmt: skip
