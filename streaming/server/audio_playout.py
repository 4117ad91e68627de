"""The talking head's outgoing audio: a bounded buffer of received speech, played out in real time.

Its *cursor* is the speech time (seconds since the start or the last interrupt) of the next sample to
play; the video shows the mouth at the cursor, which keeps lips and sound together. Playback starts once
``preroll_s`` is buffered (the audio model needs a few tens of ms of look-ahead); when the buffer runs dry
silence is played and the cursor waits.
"""

from __future__ import annotations

import threading

import numpy as np
from livepuppet.engine.clock import Clock


class BufferFull(Exception):
    """The client sent more audio ahead of playback than allowed (``speech.max_buffer_s``)."""


class AudioPlayout:
    """Thread-safe: the WebSocket side pushes, the WebRTC audio track pulls, the engine reads the cursor."""

    def __init__(self, rate: int, preroll_s: float, max_buffer_s: float, clock: Clock) -> None:
        self.rate = rate
        self._clock = clock
        self.speech_arrived_ns: int | None = None  # when audio arrived while nothing was playing or queued
        self._preroll = int(preroll_s * rate)
        self._capacity = int(max_buffer_s * rate)
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        """Drop all queued audio (barge-in); the cursor restarts at 0."""
        with self._lock:
            self._chunks: list[np.ndarray] = []
            self._queued = 0
            self._played = 0
            self._playing = False
            self._ended = False

    def push(self, samples: np.ndarray) -> None:
        """Queue ``(n,) f32`` samples at :attr:`rate`."""
        with self._lock:
            if self._queued + len(samples) > self._capacity:
                raise BufferFull(f"more than {self._capacity / self.rate:.0f} s of audio queued ahead of playback")
            if not self._queued and not self._playing and len(samples):
                self.speech_arrived_ns = self._clock.now_ns()
            self._chunks.append(np.asarray(samples, np.float32))
            self._queued += len(samples)
            self._ended = False

    def end(self) -> None:
        """No more audio for now: play what is queued even if it is shorter than the pre-roll."""
        with self._lock:
            self._ended = True

    def pull(self, n: int) -> tuple[np.ndarray, bool]:
        """The next ``n`` samples to play (zeros where there is nothing) and whether speech is playing."""
        out = np.zeros(n, np.float32)
        with self._lock:
            if not self._playing and (self._queued >= self._preroll or (self._ended and self._queued)):
                self._playing = True
            if not self._playing:
                return out, False
            filled = 0
            while filled < n and self._chunks:
                chunk = self._chunks[0]
                take = min(n - filled, len(chunk))
                out[filled:filled + take] = chunk[:take]
                filled += take
                if take == len(chunk):
                    self._chunks.pop(0)
                else:
                    self._chunks[0] = chunk[take:]
            self._queued -= filled
            self._played += filled
            if not self._queued:  # ran dry: wait for a new pre-roll before playing again
                self._playing = False
            return out, filled > 0

    @property
    def cursor_s(self) -> float:
        """Speech time of the next sample to play."""
        return self._played / self.rate

    @property
    def playing(self) -> bool:
        """Speech is being played out now (pre-roll reached, buffer not run dry)."""
        with self._lock:
            return self._playing

    @property
    def speaking(self) -> bool:
        with self._lock:
            return self._playing or (self._queued > 0)

    @property
    def queued_s(self) -> float:
        return self._queued / self.rate
