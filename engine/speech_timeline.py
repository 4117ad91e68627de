"""What the audio says over time: model mouth frames and prosody on the speech timeline, sampled at any
instant (video frames fall between the 10 ms hops)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from livepuppet.engine.audio_mouth import MouthFrame
from livepuppet.engine.prosody import ProsodyFrame

HOP_S = 0.01
STRESS_DB = 6.0  # a 6 dB rise within 50 ms is a full-strength onset
ACCENT_OCTAVES = 0.4  # pitch this far above the speaker's median is a full-strength accent
VOICED_DB = -45.0


@dataclass(frozen=True, slots=True)
class SpeechSample:
    """The speech at one instant. Mouth controls as in :class:`MouthFrame`; ``stress`` (energy onset) and
    ``accent`` (pitch above the speaker's median) in [0, 1]."""

    jaw_open: float = 0.0
    lip_width: float = 0.0
    lip_round: float = 0.0
    lip_close: float = 0.0
    voiced: float = 0.0
    stress: float = 0.0
    accent: float = 0.0


SILENT = SpeechSample()
_MOUTH = ("jaw_open", "lip_width", "lip_round", "lip_close", "voiced")


class SpeechTimeline:
    """Thread-safe store of the current utterance's frames (audio thread appends, engine thread samples)."""

    def __init__(self, capacity_s: float = 600.0) -> None:
        self._capacity = int(capacity_s / HOP_S)
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        """Forget everything (barge-in); the timeline restarts at 0."""
        with self._lock:
            self._mouth = np.zeros((0, len(_MOUTH)), np.float32)
            self._visemes = np.zeros(0, np.int16)
            self._mouth_t0 = 0.0  # speech time of self._mouth[0]'s start
            self._db: list[float] = []
            self._f0: list[float] = []
            self._stress = np.zeros(0, np.float32)
            self._accent = np.zeros(0, np.float32)
            self._prosody_base = 0  # hop index of self._stress[0]

    @property
    def mouth_until(self) -> float:
        """Speech time up to which mouth frames exist (s)."""
        with self._lock:
            return self._mouth_t0 + len(self._mouth) * HOP_S

    def add_mouth(self, frames: list[MouthFrame]) -> None:
        if not frames:
            return
        rows = np.array([[getattr(f, name) for name in _MOUTH] for f in frames], np.float32)
        visemes = np.array([f.viseme for f in frames], np.int16)
        with self._lock:
            if not len(self._mouth):
                self._mouth_t0 = frames[0].t - HOP_S / 2
            self._mouth = np.concatenate([self._mouth, rows])
            self._visemes = np.concatenate([self._visemes, visemes])
            drop = len(self._mouth) - self._capacity
            if drop > 0:  # a very long stream: keep the last capacity_s seconds
                self._mouth, self._visemes = self._mouth[drop:], self._visemes[drop:]
                self._mouth_t0 += drop * HOP_S

    def add_prosody(self, frames: list[ProsodyFrame]) -> None:
        if not frames:
            return
        with self._lock:
            self._db.extend(f.db for f in frames)
            self._f0.extend(f.f0 for f in frames)
            db = np.array(self._db[-(len(frames) + 5):], np.float32)
            rise = db[5:] - db[:-5] if len(db) > 5 else np.zeros(len(frames), np.float32)
            stress = np.clip(rise[-len(frames):] / STRESS_DB, 0.0, 1.0) if len(rise) else np.zeros(len(frames))
            voiced = [f for f in self._f0[-3000:] if f > 0]
            median = float(np.median(voiced)) if len(voiced) >= 10 else 0.0
            f0 = np.array([f.f0 for f in frames], np.float32)
            accent = np.zeros(len(frames), np.float32)
            if median > 0:
                ok = f0 > 0
                accent[ok] = np.clip(np.log2(f0[ok] / median) / ACCENT_OCTAVES, 0.0, 1.0)
            self._stress = np.concatenate([self._stress, np.pad(stress, (len(frames) - len(stress), 0))])
            self._accent = np.concatenate([self._accent, accent])
            self._db, self._f0 = self._db[-3000:], self._f0[-3000:]
            drop = len(self._stress) - self._capacity
            if drop > 0:
                self._stress, self._accent = self._stress[drop:], self._accent[drop:]
                self._prosody_base += drop

    def sample(self, t: float) -> SpeechSample:
        """Linear interpolation of the frames around speech time ``t``; before the first or after the last
        frame the nearest one holds (the model's look-ahead can leave the newest 40 ms not yet known)."""
        with self._lock:
            if not len(self._mouth):
                return SILENT
            x = (t - self._mouth_t0) / HOP_S - 0.5
            i = int(np.clip(np.floor(x), 0, len(self._mouth) - 1))
            j = min(i + 1, len(self._mouth) - 1)
            w = float(np.clip(x - i, 0.0, 1.0)) if j != i else 0.0
            m = (1 - w) * self._mouth[i] + w * self._mouth[j]
            k = int(np.clip(round(t / HOP_S) - self._prosody_base, 0, max(0, len(self._stress) - 1)))
            stress = float(self._stress[k]) if len(self._stress) else 0.0
            accent = float(self._accent[k]) if len(self._accent) else 0.0
        jaw_open, lip_width, lip_round, lip_close, voiced = (float(v) for v in m)
        return SpeechSample(jaw_open, lip_width, lip_round, lip_close, voiced, stress=stress, accent=accent)

    def viseme_at(self, t: float) -> int:
        """Index into the viseme set of the frame at speech time ``t`` (0 = silence when none)."""
        with self._lock:
            if not len(self._visemes):
                return 0
            i = int(np.clip((t - self._mouth_t0) / HOP_S, 0, len(self._visemes) - 1))
            return int(self._visemes[i])
