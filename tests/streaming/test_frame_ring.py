"""The frame ring: latest wins, drops are counted, a held slot is never overwritten, waits wake up."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from livepuppet.streaming.frame_ring import FrameRing


def frame(value: int, shape: tuple[int, ...] = (4, 6, 3)) -> np.ndarray:
    return np.full(shape, value, np.uint8)


def test_latest_wins_and_drops_are_counted() -> None:
    ring = FrameRing()
    assert ring.take() is None
    for i in range(5):
        ring.write(frame(i), pts=i * 10, seq=i)
    taken = ring.take()
    assert taken is not None and taken.seq == 4 and taken.pts == 40 and int(taken.pixels[0, 0, 0]) == 4
    taken.release()
    assert ring.take(after_seq=4) is None  # nothing newer
    stats = ring.stats()
    assert (stats.written, stats.taken, stats.dropped) == (5, 1, 4)


def test_slot_being_read_is_never_overwritten() -> None:
    ring = FrameRing(capacity=3)
    ring.write(frame(1), 0, 1)
    held = ring.take()
    assert held is not None
    for i in range(2, 50):  # the producer keeps going while the consumer holds frame 1
        ring.write(frame(i), 0, i)
    assert int(held.pixels.min()) == 1 and int(held.pixels.max()) == 1
    held.release()
    with ring.take() as newest:  # type: ignore[union-attr]
        assert newest.seq == 49


def test_frames_are_copied_and_size_changes_are_followed() -> None:
    ring = FrameRing()
    source = frame(7)
    ring.write(source, 0, 0)
    source[:] = 0  # the producer reuses its buffer
    with ring.take() as got:  # type: ignore[union-attr]
        assert int(got.pixels[0, 0, 0]) == 7
    ring.write(frame(9, (8, 10, 3)), 0, 1)  # a browser adapted its camera resolution
    with ring.take(0) as got:  # type: ignore[union-attr]
        assert got.pixels.shape == (8, 10, 3)


def test_stamps_travel_with_the_frame() -> None:
    ring = FrameRing()
    ring.write(frame(1), 5, 0, (("received", 1), ("decoded", 2)))
    with ring.take() as got:  # type: ignore[union-attr]
        assert got.stamps == (("received", 1), ("decoded", 2))


def test_wait_newer_wakes_on_write_and_close() -> None:
    ring = FrameRing()
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(ring.wait_newer(-1, timeout=5)))
    waiter.start()
    time.sleep(0.05)
    ring.write(frame(1), 0, 0)
    waiter.join(2)
    assert woke == [True]
    assert ring.wait_newer(0, timeout=0.01) is False  # nothing newer: times out
    ring.close()
    assert ring.wait_newer(0, timeout=5) is True  # closing releases waiters


def test_on_write_callback_and_capacity_check() -> None:
    calls: list[int] = []
    ring = FrameRing(on_write=lambda: calls.append(1))
    ring.write(frame(1), 0, 0)
    assert calls == [1]
    with pytest.raises(ValueError, match="at least 3"):
        FrameRing(capacity=2)


def test_concurrent_producer_consumer_never_tears_frames() -> None:
    ring = FrameRing()
    stop = threading.Event()
    torn: list[int] = []

    def produce() -> None:
        i = 0
        while not stop.is_set():
            ring.write(frame(i % 256, (64, 64, 3)), 0, i)
            i += 1

    producer = threading.Thread(target=produce)
    producer.start()
    last = -1
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        got = ring.take(last)
        if got is None:
            continue
        with got:
            if got.pixels.min() != got.pixels.max():
                torn.append(got.seq)
            last = got.seq
    stop.set()
    producer.join()
    assert not torn and last > 0
