"""The jitter buffer between the talking-head generator and the WebRTC audio track.

The generator hands out one audio slice per video frame (speech, or silence between utterances) at the
output cadence; the track sends 20 ms packets on its own clock. Playback starts once ``preroll_s`` is
buffered, so the two cadences never starve each other; when the buffer runs dry, silence is sent and
playback waits for a new pre-roll. Bounded: beyond ``max_s`` the oldest audio is dropped and counted.
"""

from __future__ import annotations

import threading

import numpy as np
from livepuppet.engine.speech.sample_queue import SampleQueue


class AudioPlayout:
    """Thread-safe: the talk job pushes (event loop), the WebRTC audio track pulls."""

    def __init__(self, rate: int, preroll_s: float, max_s: float = 2.0) -> None:
        self.rate = rate
        self._preroll = int(preroll_s * rate)
        self._capacity = int(max_s * rate)
        self._lock = threading.Lock()
        self._queue = SampleQueue()
        self._playing = False
        self.dropped_samples = 0
        self.underruns = 0

    def clear(self) -> None:
        """Drop all buffered audio (barge-in)."""
        with self._lock:
            self._queue.clear()
            self._playing = False

    def push(self, samples: np.ndarray) -> None:
        """Queue ``(n,) f32`` samples at :attr:`rate`."""
        with self._lock:
            self._queue.push(samples)
            while self._queue.queued > self._capacity:  # a stalled consumer: keep the newest
                self.dropped_samples += self._queue.drop_oldest()

    def skip(self, n: int) -> None:
        """Drop the next ``n`` samples unplayed (their time passed while the consumer stalled)."""
        with self._lock:
            if self._playing:
                self.dropped_samples += self._queue.take_into(np.empty(min(n, self._queue.queued), np.float32))

    def pull(self, n: int) -> np.ndarray:
        """The next ``n`` samples to play (zeros where there is nothing)."""
        out = np.zeros(n, np.float32)
        with self._lock:
            if not self._playing and self._queue.queued >= max(1, self._preroll):
                self._playing = True
            if not self._playing:
                return out
            filled = self._queue.take_into(out)
            if filled < n:  # ran dry: wait for a new pre-roll before playing again
                self._playing = False
                self.underruns += 1
            return out

    @property
    def queued_s(self) -> float:
        """Audio buffered ahead of the next packet (s)."""
        return self._queue.queued / self.rate
