"""A FIFO of audio samples kept as the chunks they arrived in (no copying on push), read in any sizes."""

from __future__ import annotations

from collections import deque

import numpy as np


class SampleQueue:
    """``(n,) f32`` chunks in, ``take(n)`` out; not thread-safe (its owner locks)."""

    def __init__(self) -> None:
        self._chunks: deque[np.ndarray] = deque()
        self.queued = 0  # samples waiting

    def push(self, samples: np.ndarray) -> None:
        if len(samples):
            self._chunks.append(np.asarray(samples, np.float32))
            self.queued += len(samples)

    def take_into(self, out: np.ndarray) -> int:
        """Fill ``out`` from the front of the queue; returns how many samples it got (fewer when short)."""
        filled = 0
        while filled < len(out) and self._chunks:
            chunk = self._chunks[0]
            k = min(len(out) - filled, len(chunk))
            out[filled:filled + k] = chunk[:k]
            filled += k
            if k == len(chunk):
                self._chunks.popleft()
            else:
                self._chunks[0] = chunk[k:]
        self.queued -= filled
        return filled

    def drop_oldest(self) -> int:
        """Drop the oldest chunk (a consumer that stalled); returns its length."""
        chunk = self._chunks.popleft()
        self.queued -= len(chunk)
        return len(chunk)

    def clear(self) -> None:
        self._chunks.clear()
        self.queued = 0
