"""A fixed, preallocated, latest-wins frame ring between two threads (network ↔ engine).

One producer and one consumer per ring. The producer never blocks: it copies into a free slot and, if the
consumer has not taken the previous frame yet, that frame is *dropped* (counted, never queued). The
consumer always gets the newest frame. Slots are triple-buffered, so the slot a consumer is reading is
never overwritten while it holds it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

MIN_CAPACITY = 3  # newest + one being read + one being written


@dataclass(slots=True)
class RingStats:
    """Counters of one ring (read under the ring's lock via :meth:`FrameRing.stats`)."""

    written: int = 0
    taken: int = 0
    dropped: int = 0  # written but overwritten before the consumer took them


@dataclass(slots=True)
class _Slot:
    pixels: np.ndarray
    pts: int = 0
    seq: int = -1
    stamps: dict[str, int] = field(default_factory=dict)
    shape: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class RingFrame:
    """A frame taken from a ring. ``pixels`` is a view into the ring's slot: valid until :meth:`release`
    (or the ``with`` block ends); copy it to keep it longer."""

    pixels: np.ndarray
    pts: int  # capture time of the frame (ns, the server's clock)
    seq: int
    stamps: tuple[tuple[str, int], ...]  # (stage, ns) stamps added so far, in order
    _ring: FrameRing
    _index: int

    def release(self) -> None:
        self._ring._release(self._index)

    def __enter__(self) -> RingFrame:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class FrameRing:
    """Latest-wins ring of ``capacity`` preallocated image slots (H×W×C uint8; reallocated only when the
    frame size changes, e.g. when a browser adapts its camera resolution)."""

    def __init__(self, capacity: int = MIN_CAPACITY, on_write: Callable[[], None] | None = None) -> None:
        if capacity < MIN_CAPACITY:
            raise ValueError(f"a frame ring needs at least {MIN_CAPACITY} slots, got {capacity}")
        self._slots = [_Slot(pixels=np.zeros((0,), np.uint8)) for _ in range(capacity)]
        self._lock = threading.Lock()
        self._newer = threading.Condition(self._lock)
        self._latest = -1  # slot index of the newest unread-or-read frame
        self._latest_seq = -1
        self._latest_taken = True
        self._reading: set[int] = set()
        self._stats = RingStats()
        self._on_write = on_write
        self._closed = False

    @property
    def capacity(self) -> int:
        return len(self._slots)

    def stats(self) -> RingStats:
        with self._lock:
            return RingStats(self._stats.written, self._stats.taken, self._stats.dropped)

    @property
    def latest_seq(self) -> int:
        return self._latest_seq

    def write(self, pixels: np.ndarray, pts: int, seq: int, stamps: tuple[tuple[str, int], ...] = ()) -> bool:
        """Copy ``pixels`` (H, W, C) u8 into a free slot and publish it. Returns True when an unread frame
        was dropped to make room (the consumer was slower than the producer)."""
        with self._lock:
            index = self._free_slot()
            slot = self._slots[index]
        if slot.pixels.shape != pixels.shape or slot.pixels.dtype != pixels.dtype:
            slot.pixels = np.empty_like(pixels)
        np.copyto(slot.pixels, pixels)
        slot.pts, slot.seq, slot.stamps = pts, seq, dict(stamps)
        with self._lock:
            dropped = not self._latest_taken and self._latest >= 0
            self._latest, self._latest_seq, self._latest_taken = index, seq, False
            self._stats.written += 1
            self._stats.dropped += int(dropped)
            self._newer.notify_all()
        if self._on_write is not None:
            self._on_write()
        return dropped

    def _free_slot(self) -> int:
        for offset in range(1, len(self._slots) + 1):
            index = (self._latest + offset) % len(self._slots)
            if index != self._latest and index not in self._reading:
                return index
        raise RuntimeError("frame ring has no free slot: a consumer holds too many frames")  # pragma: no cover

    def has_newer(self, after_seq: int) -> bool:
        return self._latest >= 0 and self._latest_seq > after_seq

    def take(self, after_seq: int = -1) -> RingFrame | None:
        """The newest frame if it is newer than ``after_seq`` (else None), held until released."""
        with self._lock:
            if self._latest < 0 or self._latest_seq <= after_seq:
                return None
            index = self._latest
            self._reading.add(index)
            self._latest_taken = True
            self._stats.taken += 1
            slot = self._slots[index]
            return RingFrame(pixels=slot.pixels, pts=slot.pts, seq=slot.seq, stamps=tuple(slot.stamps.items()),
                             _ring=self, _index=index)

    def wait_newer(self, after_seq: int, timeout: float | None) -> bool:
        """Block (engine thread) until a frame newer than ``after_seq`` exists, the ring closes, or timeout."""
        with self._lock:
            return self._newer.wait_for(lambda: self._closed or self._latest_seq > after_seq, timeout)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._newer.notify_all()

    def _release(self, index: int) -> None:
        with self._lock:
            self._reading.discard(index)


class FrameSink(Protocol):
    """Anything a job can publish frames to: a :class:`FrameRing`, a shared-memory ring, a relay."""

    def write(self, pixels: np.ndarray, pts: int, seq: int, stamps: tuple[tuple[str, int], ...] = ()) -> bool: ...


class HeldFrame(Protocol):
    """A frame taken from a ring, valid until released (``with`` block)."""

    pixels: np.ndarray
    pts: int
    seq: int
    stamps: tuple[tuple[str, int], ...]

    def __enter__(self) -> HeldFrame: ...

    def __exit__(self, *exc: object) -> None: ...


class FrameSource(Protocol):
    """The consumer side of a latest-wins ring (in-process or shared memory)."""

    def has_newer(self, after_seq: int) -> bool: ...

    def take(self, after_seq: int = -1) -> HeldFrame | None: ...

    def stats(self) -> RingStats: ...

    def close(self) -> None: ...


class RingFanout:
    """The output rings of one engine job (WebRTC track, WHEP viewers, a virtual camera): thread-safe
    add/remove from the event loop, one write to all from the engine thread."""

    def __init__(self) -> None:
        self._rings: list[FrameSink] = []
        self._lock = threading.Lock()

    def add(self, ring: FrameSink) -> None:
        with self._lock:
            self._rings.append(ring)

    def remove(self, ring: FrameSink) -> None:
        with self._lock:
            if ring in self._rings:
                self._rings.remove(ring)

    def write(self, pixels: np.ndarray, pts: int, seq: int, stamps: tuple[tuple[str, int], ...] = ()) -> None:
        with self._lock:
            rings = list(self._rings)
        for ring in rings:
            ring.write(pixels, pts, seq, stamps)
