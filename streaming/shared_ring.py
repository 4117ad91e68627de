"""A latest-wins frame ring in shared memory: one producer process, one consumer process, no pickling.

The same contract as :class:`~livepuppet.streaming.frame_ring.FrameRing` (``write`` never blocks and drops
an unread frame, ``take`` returns the newest frame and holds its slot until released) across a process
boundary. Three slots of a fixed maximum size; a small header of int64 words carries which slot is newest
and which one the consumer reads (a triple buffer: the producer writes a slot that is neither), plus the
counters. Single-writer words and x86-64 store ordering make it lock-free; the consumer re-checks the newest
slot after claiming it, so a frame is never read while it is being overwritten.

The creator owns the segment: :meth:`SharedFrameRing.create` allocates it and :meth:`unlink` frees it; the
other side :meth:`attach`es by name and only :meth:`detach`es its mapping.
"""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass
from multiprocessing import resource_tracker, shared_memory

import numpy as np
from livepuppet.streaming.frame_ring import RingStats

SLOTS = 3
STAMP_NAMES = ("received", "decoded", "dequeue", "track", "retarget", "render", "engine_done", "tick")
MAX_STAMPS = 8
# Header words (int64): newest slot (-1 none), seq of newest, slot being read (-1 none), taken flag of newest,
# written, taken, dropped, closed, then per slot: pts, seq, height, width, stamp count, 8 × (code, ns).
_H_LATEST, _H_LATEST_SEQ, _H_READING, _H_TAKEN, _H_WRITTEN, _H_TAKEN_N, _H_DROPPED, _H_CLOSED = range(8)
_SLOT_WORDS = 5 + 2 * MAX_STAMPS
_HEADER_WORDS = 8 + SLOTS * _SLOT_WORDS


def _slot_base(index: int) -> int:
    return 8 + index * _SLOT_WORDS


@dataclass(frozen=True, slots=True)
class SharedFrame:
    """A frame taken from a shared ring; ``pixels`` is a view into the segment, valid until released."""

    pixels: np.ndarray
    pts: int
    seq: int
    stamps: tuple[tuple[str, int], ...]
    _ring: SharedFrameRing

    def release(self) -> None:
        self._ring._release()

    def __enter__(self) -> SharedFrame:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class SharedFrameRing:
    """Frames up to ``max_height × max_width × 3`` u8 (larger ones are refused: resize before writing)."""

    def __init__(self, shm: shared_memory.SharedMemory, max_height: int, max_width: int, owner: bool) -> None:
        self._shm = shm
        self.name = shm.name
        self.max_height, self.max_width = max_height, max_width
        self._owner = owner
        self._header = np.ndarray((_HEADER_WORDS,), np.int64, buffer=shm.buf, offset=0)
        slot_bytes = max_height * max_width * 3
        self._slots = [np.ndarray((slot_bytes,), np.uint8, buffer=shm.buf, offset=_HEADER_WORDS * 8 + i * slot_bytes)
                       for i in range(SLOTS)]
        self._last_taken_seq = -1

    @classmethod
    def create(cls, max_height: int, max_width: int) -> SharedFrameRing:
        size = _HEADER_WORDS * 8 + SLOTS * max_height * max_width * 3
        shm = shared_memory.SharedMemory(name=f"lp_{secrets.token_hex(6)}", create=True, size=size)
        ring = cls(shm, max_height, max_width, owner=True)
        ring._header[:] = 0
        ring._header[[_H_LATEST, _H_READING, _H_LATEST_SEQ]] = -1
        ring._header[_H_TAKEN] = 1
        return ring

    @classmethod
    def attach(cls, name: str, max_height: int, max_width: int) -> SharedFrameRing:
        # Only the creator's resource tracker may free the segment. Before Python 3.13 attaching registers it
        # with this process's tracker too, which would unlink it (and warn) when this process ends.
        if sys.version_info >= (3, 13):
            shm = shared_memory.SharedMemory(name=name, create=False, track=False)  # type: ignore[call-arg]
        else:
            shm = shared_memory.SharedMemory(name=name, create=False)
            resource_tracker.unregister(f"/{shm.name}", "shared_memory")
        return cls(shm, max_height, max_width, owner=False)

    # -- producer ----------------------------------------------------------------------------------------

    def write(self, pixels: np.ndarray, pts: int, seq: int, stamps: tuple[tuple[str, int], ...] = ()) -> bool:
        """Copy ``pixels (H, W, 3) u8`` into a free slot and publish it; True when an unread frame was dropped."""
        h, w = pixels.shape[:2]
        if pixels.ndim != 3 or pixels.shape[2] != 3 or h > self.max_height or w > self.max_width:
            raise ValueError(f"frame {pixels.shape} does not fit a {self.max_height}×{self.max_width}×3 shared ring")
        header = self._header
        latest, reading = int(header[_H_LATEST]), int(header[_H_READING])
        index = next(i for i in range(SLOTS) if i != latest and i != reading)
        self._slots[index][:h * w * 3].reshape(h, w, 3)[...] = pixels
        base = _slot_base(index)
        named = [(STAMP_NAMES.index(n), t) for n, t in stamps if n in STAMP_NAMES][:MAX_STAMPS]
        header[base:base + 5] = (pts, seq, h, w, len(named))
        for k, (code, t) in enumerate(named):
            header[base + 5 + 2 * k:base + 7 + 2 * k] = (code, t)
        dropped = not header[_H_TAKEN] and latest >= 0
        header[_H_TAKEN] = 0  # publish: the flags first, the newest slot last
        header[_H_LATEST_SEQ] = seq
        header[_H_LATEST] = index
        header[_H_WRITTEN] += 1
        header[_H_DROPPED] += int(dropped)
        return bool(dropped)

    # -- consumer ----------------------------------------------------------------------------------------

    def has_newer(self, after_seq: int) -> bool:
        return int(self._header[_H_LATEST]) >= 0 and int(self._header[_H_LATEST_SEQ]) > after_seq

    @property
    def latest_seq(self) -> int:
        return int(self._header[_H_LATEST_SEQ])

    def take(self, after_seq: int = -1) -> SharedFrame | None:
        """The newest frame if newer than ``after_seq``, held (its slot is not overwritten) until released."""
        header = self._header
        for _ in range(4):
            index = int(header[_H_LATEST])
            if index < 0:
                return None
            header[_H_READING] = index
            if int(header[_H_LATEST]) == index:  # still the newest after the claim: the producer will avoid it
                break
        else:  # pragma: no cover - a producer publishing faster than four claims in a row
            index = int(header[_H_READING])
        base = _slot_base(index)
        pts, seq, h, w, n = (int(v) for v in header[base:base + 5])
        if seq <= after_seq:
            header[_H_READING] = -1
            return None
        header[_H_TAKEN] = 1
        header[_H_TAKEN_N] += 1
        stamps = tuple((STAMP_NAMES[int(header[base + 5 + 2 * k])], int(header[base + 6 + 2 * k])) for k in range(n))
        pixels = self._slots[index][:h * w * 3].reshape(h, w, 3)
        return SharedFrame(pixels=pixels, pts=pts, seq=seq, stamps=stamps, _ring=self)

    def _release(self) -> None:
        self._header[_H_READING] = -1

    # -- both ---------------------------------------------------------------------------------------------

    def stats(self) -> RingStats:
        h = self._header
        return RingStats(int(h[_H_WRITTEN]), int(h[_H_TAKEN_N]), int(h[_H_DROPPED]))

    def close(self) -> None:
        """No more frames will be written (as :meth:`FrameRing.close`); the mapping stays."""
        self._header[_H_CLOSED] = 1

    @property
    def closed(self) -> bool:
        return bool(self._header[_H_CLOSED])

    def detach(self) -> None:
        """Drop this process's mapping (views into it must be gone)."""
        if self._slots:
            del self._header
            self._slots.clear()
            self._shm.close()

    def unlink(self) -> None:
        """Creator only: drop the mapping and free the segment."""
        self.detach()
        if self._owner:
            try:
                self._shm.unlink()
            except FileNotFoundError:
                pass
