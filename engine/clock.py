"""Clocks injected into the engine: library code never reads wall time directly."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """A monotonic source of integer nanoseconds."""

    def now_ns(self) -> int: ...


class MonotonicClock:
    """The real clock: ``time.monotonic_ns``."""

    def now_ns(self) -> int:
        return time.monotonic_ns()


class ManualClock:
    """A clock tests advance by hand."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += int(round(seconds * 1e9))
