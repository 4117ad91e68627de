"""Real recorded speech: Debian's asterisk-core-sounds-en prompts, force-aligned to their transcripts (pocketsphinx)."""

from __future__ import annotations

import gzip
import re
import wave
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from livepuppet.engine.speech.features import resample
from livepuppet.engine.speech.visemes import VISEME_INDEX, arpabet_to_viseme
from livepuppet.errors import DependencyError
from livepuppet.export.audio.speech_data import Segment, Utterance

SOUNDS_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
HOLDOUT_PERCENT = 15  # prompts whose name hashes below this are never trained on
_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@dataclass(frozen=True, slots=True)
class Prompt:
    """One recorded prompt and its transcript."""

    name: str  # e.g. "agent-pass" or "digits/5"
    path: Path
    text: str


def prompts_available() -> bool:
    """True when both Debian packages (the WAVs and the transcripts) are installed."""
    return SOUNDS_DIR.is_dir() and TRANSCRIPTS.is_file()


def is_held_out(name: str) -> bool:
    """Fixed ~15 % split by name (CRC32), independent of the training seed."""
    return zlib.crc32(name.encode()) % 100 < HOLDOUT_PERCENT


def load_prompts(sounds_dir: Path = SOUNDS_DIR, transcripts: Path = TRANSCRIPTS) -> list[Prompt]:
    """Every prompt with a WAV and a transcript line, sorted by name (default: the English set)."""
    if not (sounds_dir.is_dir() and transcripts.is_file()):
        raise DependencyError(
            f"asterisk prompts missing ({sounds_dir}, {transcripts}): apt-get install "
            "asterisk-core-sounds-en-wav asterisk-core-sounds-en (or the language's -wav and transcript packages)"
        )
    prompts = []
    with gzip.open(transcripts, "rt", encoding="utf-8-sig", errors="replace") as handle:
        for line in handle:
            if line.startswith(";") or ":" not in line:
                continue
            name, text = (part.strip() for part in line.split(":", 1))
            text = re.sub(r"\([^)]*\)", " ", text).strip()  # "(beep)", "(sound of a ...)": not speech
            path = sounds_dir / f"{name}.wav"
            if path.is_file() and text:
                prompts.append(Prompt(name, path, text))
    return sorted(prompts, key=lambda p: p.name)


def normalize_text(text: str) -> list[str]:
    """Transcript → lower-case dictionary words (digits spelled out, * and # named as on a phone keypad)."""
    text = text.lower().replace("*", " star ").replace("#", " pound ").replace("&", " and ")
    text = re.sub(r"\d", lambda m: f" {_DIGITS[int(m.group())]} ", text)
    text = re.sub(r"[^a-z' ]+", " ", text)
    return [w.strip("'") for w in text.split() if w.strip("'")]


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """16-bit PCM WAV → ``(n,) f32 [-1,1]`` mono and its rate."""
    with wave.open(str(path)) as handle:
        rate, channels, width = handle.getframerate(), handle.getnchannels(), handle.getsampwidth()
        raw = handle.readframes(handle.getnframes())
    if width != 2:
        raise ValueError(f"{path}: expected 16-bit PCM, got {8 * width}-bit")
    audio = np.frombuffer(raw, np.int16).astype(np.float32) / 32768.0
    if channels > 1:
        audio = audio.reshape(-1, channels).mean(axis=1)
    return audio, rate


@dataclass(frozen=True, slots=True)
class AlignedPhone:
    """One phone of a pocketsphinx alignment, in 10 ms frames."""

    name: str  # CMU phone, e.g. "AE"
    start: int
    duration: int


@dataclass(frozen=True, slots=True)
class AlignedWord:
    """One word of a pocketsphinx alignment (fillers such as ``<sil>`` included) and its phones."""

    name: str
    phones: tuple[AlignedPhone, ...]


class PocketsphinxAligner:
    """Forced alignment of known text with pocketsphinx 5's en-us model (phone timings in 10 ms frames)."""

    def __init__(self) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:
            raise DependencyError("pocketsphinx missing: pip install 'pocketsphinx>=5'") from exc
        self._decoder = Decoder(loglevel="FATAL")

    def known(self, words: list[str]) -> bool:
        """True when every word is in the pronunciation dictionary."""
        return all(self._decoder.lookup_word(w) is not None for w in words)

    def alignment(self, audio: np.ndarray, rate: int, words: list[str]) -> list[AlignedWord] | None:
        """pocketsphinx's word/phone alignment of ``words`` (dictionary entries) in ``audio``; None if it fails."""
        pcm = np.clip(resample(audio, rate, 16_000) * 32767.0, -32768, 32767).astype(np.int16).tobytes()
        decoder = self._decoder
        try:
            decoder.set_align_text(" ".join(words))
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            decoder.set_alignment()
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            alignment = decoder.get_alignment()
            if alignment is None:
                return None
            # copy out now: the entries are views into the decoder's C state
            return [
                AlignedWord(word.name, tuple(AlignedPhone(p.name, p.start, p.duration) for p in word))
                for word in alignment
            ]
        except RuntimeError:
            return None

    def add_word(self, word: str, phones: tuple[str, ...]) -> None:
        """Add a pronunciation (CMU phones) to the decoder's dictionary unless the word is already there."""
        if self._decoder.lookup_word(word) is None:
            self._decoder.add_word(word, " ".join(phones), False)

    def align(self, audio: np.ndarray, rate: int, words: list[str]) -> tuple[Segment, ...] | None:
        """Phone segments (as visemes) of ``words`` in ``audio``; None when the decoder cannot align them."""
        alignment = self.alignment(audio, rate, words)
        if alignment is None:
            return None
        segments = []
        for word in alignment:
            for phone in word.phones:
                viseme = VISEME_INDEX[arpabet_to_viseme(phone.name)]
                if viseme != 0 and phone.duration > 0:
                    segments.append(Segment(phone.start * 0.01, (phone.start + phone.duration) * 0.01, viseme))
        return tuple(segments) if segments else None

    def utterance(self, prompt: Prompt) -> Utterance | None:
        """The aligned utterance of one prompt, or None if its words or audio cannot be aligned."""
        words = normalize_text(prompt.text)
        if not words or not self.known(words):
            return None
        audio, rate = read_wav(prompt.path)
        segments = self.align(audio, rate, words)
        if segments is None:
            return None
        return Utterance(
            audio=audio, rate=rate, segments=segments, source="asterisk", speaker="allison", text=prompt.text
        )
