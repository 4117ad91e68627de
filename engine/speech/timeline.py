"""What the audio says over time: model mouth frames and prosody on the speech timeline, sampled at any
instant (video frames fall between the 10 ms hops)."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np
from livepuppet.engine.speech.mouth_model import MouthFrame
from livepuppet.engine.speech.prosody import ProsodyFrame

HOP_S = 0.01
STRESS_DB = 6.0  # a 6 dB rise within 50 ms is a full-strength onset
ACCENT_OCTAVES = 0.4  # pitch this far above the speaker's median is a full-strength accent
STRESS_LAG = 5  # hops (50 ms) over which a loudness rise counts as an onset
PITCH_HISTORY = 3000  # hops (30 s) of pitch behind the speaker's median
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


class _Series:
    """Append-only rows with amortized O(1) appends, keeping the newest ``capacity`` rows (a long stream
    must not copy its whole history on every 20 ms chunk)."""

    def __init__(self, width: int, dtype: type, capacity: int) -> None:
        self._buffer: np.ndarray = np.zeros((min(capacity, 1024) * 2, width), dtype)
        self._capacity = capacity
        self._start = self._end = 0

    def __len__(self) -> int:
        return self._end - self._start

    def view(self) -> np.ndarray:
        return self._buffer[self._start:self._end]

    def append(self, rows: np.ndarray) -> int:
        """Add ``rows (n, width)``; returns how many of the oldest rows were dropped to stay in capacity."""
        n = len(rows)
        if self._end + n > len(self._buffer):
            keep = self.view()
            size = len(self._buffer)
            while size < 2 * (len(keep) + n) and size < 2 * self._capacity + 2 * n:
                size *= 2
            buffer = np.zeros((size, self._buffer.shape[1]), self._buffer.dtype)
            buffer[:len(keep)] = keep
            self._buffer, self._start, self._end = buffer, 0, len(keep)
        self._buffer[self._end:self._end + n] = rows
        self._end += n
        drop = max(0, len(self) - self._capacity)
        self._start += drop
        return drop


def _median_voiced(f0: np.ndarray) -> float:
    """The median of the voiced (> 0) pitches in ``f0`` (f32, as ``np.median`` computes it), 0 with fewer than 10."""
    voiced = f0[f0 > 0]
    n = len(voiced)
    if n < 10:
        return 0.0
    half = n // 2
    if n % 2:
        return float(np.partition(voiced, half)[half])
    low, high = np.partition(voiced, (half - 1, half))[half - 1:half + 1]
    return float((low + high) / np.float32(2))


class SpeechTimeline:
    """Thread-safe store of the current utterance's frames (audio thread appends, engine thread samples)."""

    def __init__(self, capacity_s: float = 600.0) -> None:
        self._capacity = int(capacity_s / HOP_S)
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        """Forget everything (barge-in); the timeline restarts at 0."""
        with self._lock:
            self._mouth = _Series(len(_MOUTH), np.float32, self._capacity)
            self._mouth_t0 = 0.0  # speech time of the oldest kept mouth frame's start
            self._db: deque[float] = deque(maxlen=STRESS_LAG)
            self._f0 = _Series(1, np.float32, PITCH_HISTORY)
            self._prosody = _Series(2, np.float32, self._capacity)  # stress, accent
            self._prosody_base = 0  # hop index of the oldest kept prosody frame

    @property
    def mouth_until(self) -> float:
        """Speech time up to which mouth frames exist (s)."""
        with self._lock:
            return self._mouth_t0 + len(self._mouth) * HOP_S

    def add_mouth(self, frames: list[MouthFrame]) -> None:
        if not frames:
            return
        rows = np.array([[getattr(f, name) for name in _MOUTH] for f in frames], np.float32)
        with self._lock:
            if not len(self._mouth):
                self._mouth_t0 = frames[0].t - HOP_S / 2
            self._mouth_t0 += self._mouth.append(rows) * HOP_S  # a very long stream keeps its last capacity_s

    def add_prosody(self, frames: list[ProsodyFrame]) -> None:
        if not frames:
            return
        rows = np.zeros((len(frames), 2), np.float32)
        f0 = np.array([f.f0 for f in frames], np.float32)
        with self._lock:
            levels = self._db
            for k, frame in enumerate(frames):
                if len(levels) == STRESS_LAG:  # rise over the last 50 ms
                    rows[k, 0] = min(max((frame.db - levels[0]) / STRESS_DB, 0.0), 1.0)
                levels.append(frame.db)
            self._f0.append(f0[:, None])
            median = _median_voiced(self._f0.view()[:, 0])
            if median > 0:
                ok = f0 > 0
                rows[ok, 1] = np.clip(np.log2(f0[ok] / median) / ACCENT_OCTAVES, 0.0, 1.0)
            self._prosody_base += self._prosody.append(rows)

    def sample(self, t: float) -> SpeechSample:
        """Linear interpolation of the frames around speech time ``t``; before the first or after the last
        frame the nearest one holds (the model's look-ahead can leave the newest 40 ms not yet known)."""
        with self._lock:
            if not len(self._mouth):
                return SILENT
            mouth = self._mouth.view()
            x = (t - self._mouth_t0) / HOP_S - 0.5
            i = int(np.clip(np.floor(x), 0, len(mouth) - 1))
            j = min(i + 1, len(mouth) - 1)
            w = float(np.clip(x - i, 0.0, 1.0)) if j != i else 0.0
            m = (1 - w) * mouth[i] + w * mouth[j]
            prosody = self._prosody.view()
            k = int(np.clip(round(t / HOP_S) - self._prosody_base, 0, max(0, len(prosody) - 1)))
            stress, accent = (float(v) for v in prosody[k]) if len(prosody) else (0.0, 0.0)
        jaw_open, lip_width, lip_round, lip_close, voiced = (float(v) for v in m)
        return SpeechSample(jaw_open, lip_width, lip_round, lip_close, voiced, stress=stress, accent=accent)
