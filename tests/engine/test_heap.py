"""Freezing the start-up heap: what was alive is out of the cycle collector's passes, what comes later is
still collected."""

from __future__ import annotations

import gc
import weakref

from livepuppet.engine.heap import freeze_startup_heap


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_frozen_objects_leave_the_collectors_passes_and_new_cycles_are_still_collected() -> None:
    keep = [Node() for _ in range(1000)]
    try:
        frozen = freeze_startup_heap()
        assert frozen >= len(keep)
        tracked = {id(o) for o in gc.get_objects()}  # what a full collection now scans
        assert not any(id(node) in tracked for node in keep)
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle made after start-up: only the collector can free it
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()
    assert id(keep[0]) in {id(o) for o in gc.get_objects()}  # back in the passes once unfrozen
