"""espeak-ng synthesis with phoneme timings, through ctypes on libespeak-ng (phoneme events give audio positions)."""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass

import numpy as np
from livepuppet.engine.speech.visemes import VISEME_INDEX, ipa_to_viseme
from livepuppet.errors import DependencyError, InputError
from livepuppet.export.audio.speech_data import Segment, Utterance

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_PHONEME_IPA = 0x0002
_INITIALIZE_DONT_EXIT = 0x8000
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _PITCH, _RANGE = 1, 3, 4


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms from the start of the synthesis call
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True, slots=True)
class VoiceSettings:
    """One synthesis setting: espeak voice name with variant (``"en-us+f2"``), rate in words/min, pitch 0–100."""

    voice: str
    rate: int = 175
    pitch: int = 50
    pitch_range: int = 50


def espeak_available() -> bool:
    """True when libespeak-ng can be loaded (Debian package libespeak-ng1)."""
    return ctypes.util.find_library("espeak-ng") is not None or _try_load() is not None


def _try_load() -> ctypes.CDLL | None:
    for name in ("libespeak-ng.so.1", "libespeak-ng.so"):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


class EspeakSynth:
    """The process's espeak-ng engine (the C library is a singleton); synthesizes text with phoneme timings."""

    def __init__(self) -> None:
        lib = _try_load()
        if lib is None:
            raise DependencyError("libespeak-ng not found: apt-get install espeak-ng libespeak-ng1")
        self._lib = lib
        options = _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_PHONEME_IPA | _INITIALIZE_DONT_EXIT
        self.rate = int(lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, options))
        if self.rate <= 0:
            raise DependencyError("espeak-ng failed to initialise (is espeak-ng-data installed?)")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, str]] = []
        self._callback = _CALLBACK(self._on_audio)  # keep a reference: C holds only the pointer
        lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav: ctypes._Pointer, count: int, events: ctypes._Pointer) -> int:  # type: ignore[type-arg]
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (count,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == _EVENT_PHONEME:
                self._events.append((int(event.audio_position), bytes(event.id.string).decode("utf-8", "ignore")))
            i += 1
        return 0

    def synthesize(self, text: str, settings: VoiceSettings) -> Utterance:
        """Speak ``text``; returns the audio (espeak's rate) with phones mapped to viseme segments."""
        if self._lib.espeak_SetVoiceByName(settings.voice.encode()) != 0:
            raise InputError(f"espeak-ng has no voice {settings.voice!r}")
        self._lib.espeak_SetParameter(_RATE, int(settings.rate), 0)
        self._lib.espeak_SetParameter(_PITCH, int(settings.pitch), 0)
        self._lib.espeak_SetParameter(_RANGE, int(settings.pitch_range), 0)
        self._chunks, self._events = [], []
        data = text.encode("utf-8")
        self._lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        self._lib.espeak_Synchronize()
        audio = (np.concatenate(self._chunks).astype(np.float32) / 32768.0) if self._chunks else np.zeros(0, np.float32)
        duration = len(audio) / self.rate
        return Utterance(
            audio=audio,
            rate=self.rate,
            segments=events_to_segments(self._events, duration),
            source="espeak",
            speaker=settings.voice,
            text=text,
        )


def events_to_segments(events: list[tuple[int, str]], duration: float) -> tuple[Segment, ...]:
    """Phoneme start events ``(ms, ipa)`` → viseme segments; each phone lasts until the next event."""
    marks: list[tuple[float, int]] = []
    for position_ms, name in events:
        if name.startswith("("):
            continue  # language switch markers such as "(en)"
        viseme = ipa_to_viseme(name)
        marks.append((position_ms / 1000.0, VISEME_INDEX[viseme] if viseme else VISEME_INDEX["nn"]))
    segments: list[Segment] = []
    for k, (start, viseme) in enumerate(marks):
        end = marks[k + 1][0] if k + 1 < len(marks) else duration
        end = min(end, duration)
        if end > start and viseme != 0:
            segments.append(Segment(start, end, viseme))
    return tuple(segments)
