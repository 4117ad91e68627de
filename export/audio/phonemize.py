"""Transcripts → espeak-ng IPA phones per word (``espeak_TextToPhonemes``), each with its nearest en-us (CMU) phones.

The CMU approximation lets pocketsphinx's English acoustic model force-align speech in any espeak language;
the IPA phone keeps the exact viseme label.
"""

from __future__ import annotations

import ctypes
import unicodedata
from dataclasses import dataclass

from livepuppet.engine.speech.visemes import VISEME_INDEX, ipa_to_viseme
from livepuppet.errors import InputError
from livepuppet.export.audio.espeak import EspeakSynth

_CHARS_UTF8 = 1
_PHONEMES_IPA = 0x02
_SEPARATOR = "_"

# Multi-letter IPA phones first (after stress, length and diacritics are removed), then single letters.
_IPA_PAIRS: dict[str, tuple[str, ...]] = {
    "aɪ": ("AY",), "aʊ": ("AW",), "eɪ": ("EY",), "oʊ": ("OW",), "əʊ": ("OW",), "ɔɪ": ("OY",), "eə": ("EH",),
    "ɪə": ("IH",), "ʊə": ("UH",), "tʃ": ("CH",), "dʒ": ("JH",), "tɕ": ("CH",), "dʑ": ("JH",), "ts": ("T", "S"),
    "dz": ("D", "Z"),
}  # fmt: skip
_IPA_SINGLE: dict[str, str] = {}
for _cmu, _letters in (
    ("P", "p"), ("B", "bβʙ"), ("M", "mɱ"), ("F", "fɸ"), ("V", "vʋ"), ("TH", "θ"), ("DH", "ð"), ("T", "tʈ"),
    ("D", "dɖ"), ("K", "kqc"), ("G", "gɡɣɢɟ"), ("NG", "ŋ"), ("HH", "hɦxχçħʕ"), ("SH", "ʃʂɕ"), ("ZH", "ʒʐʑ"),
    ("S", "s"), ("Z", "z"), ("N", "nɲɳ"), ("L", "lɫʎɭɬɮ"), ("R", "rɹɻʀʁɾɽ"), ("Y", "jʝ"), ("W", "wʍɥ"),
    ("AA", "aɑäɒɶ"), ("AE", "æ"), ("AH", "ɐʌəɘɵɞɤøœ"), ("EY", "e"), ("EH", "ɛ"), ("ER", "ɜɚɝ"), ("IY", "iy"),
    ("IH", "ɪɨʏ"), ("OW", "o"), ("AO", "ɔ"), ("UW", "u"), ("UH", "ʊɯ"),
):  # fmt: skip
    for _ch in _letters:
        _IPA_SINGLE[_ch] = _cmu
_SKIP = set("ˈˌːˑ'`,-.^;!*#|0123456789") | {"ʰ", "ʲ", "ʷ", "ˠ", "ˤ", "ʼ", "\u0361", "\u035c"}


@dataclass(frozen=True, slots=True)
class Phone:
    """One espeak phone: its IPA name, viseme index and the CMU phones that stand for it acoustically."""

    ipa: str
    viseme: int
    cmu: tuple[str, ...]


def base_letters(ipa: str) -> str:
    """IPA phone without stress, length, secondary articulations or combining marks (``"ˈɛ̃ː"`` → ``"ɛ"``)."""
    text = unicodedata.normalize("NFD", ipa)
    return "".join(c for c in text if c not in _SKIP and not unicodedata.combining(c) and not c.isspace())


def ipa_to_cmu(ipa: str) -> tuple[str, ...]:
    """Nearest en-us phones of one espeak IPA phone; ``()`` when it has no sound of its own (or is unknown)."""
    letters = base_letters(ipa)
    if not letters:
        return ()
    if letters[:2] in _IPA_PAIRS:
        return _IPA_PAIRS[letters[:2]]
    return tuple(_IPA_SINGLE[c] for c in letters if c in _IPA_SINGLE)  # e.g. "ʊɹ" → UH R


def to_phone(ipa: str) -> Phone | None:
    """An espeak IPA phone as a ``Phone``; None for pauses and signs with no acoustic stand-in."""
    cmu = ipa_to_cmu(ipa)
    if not cmu:
        return None
    viseme = ipa_to_viseme(ipa)
    return Phone(ipa, VISEME_INDEX[viseme] if viseme and viseme != "sil" else VISEME_INDEX["nn"], cmu)


class Phonemizer:
    """espeak-ng's letter-to-sound rules for one voice (language), word by word."""

    def __init__(self, synth: EspeakSynth) -> None:
        self._lib = synth._lib  # the process's one espeak engine
        self._lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        self._lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]

    def words(self, text: str, voice: str) -> list[tuple[Phone, ...]]:
        """``text`` in ``voice``'s language → one tuple of phones per spoken word (empty words dropped)."""
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise InputError(f"espeak-ng has no voice {voice!r}")
        buffer = ctypes.create_string_buffer(text.encode("utf-8"))
        pointer = ctypes.c_char_p(ctypes.addressof(buffer))
        mode = _PHONEMES_IPA | (ord(_SEPARATOR) << 8)
        words: list[tuple[Phone, ...]] = []
        while pointer.value:
            clause = self._lib.espeak_TextToPhonemes(ctypes.byref(pointer), _CHARS_UTF8, mode)
            if clause is None:
                break
            for word in clause.decode("utf-8", "replace").split():
                phones = tuple(p for p in (to_phone(name) for name in word.split(_SEPARATOR) if name) if p)
                if phones:
                    words.append(phones)
        return words
