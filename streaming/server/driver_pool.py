"""Reusable :class:`Driver` instances (each holds a MediaPipe graph) shared by successive sessions.

Building a MediaPipe face-mesh graph costs ~50–100 ms and some native memory that is not all given
back when it closes, so sessions borrow a driver, and return it reset, instead of building their own.
"""

from __future__ import annotations

import threading

from livepuppet.engine.config import EngineConfig
from livepuppet.engine.pipeline import Driver


class DriverPool:
    """At most ``capacity`` idle drivers are kept; more are closed on release."""

    def __init__(self, config: EngineConfig, capacity: int) -> None:
        self._config = config
        self._capacity = capacity
        self._idle: list[Driver] = []
        self._lock = threading.Lock()
        self.created = 0

    def acquire(self) -> Driver:
        """An idle driver or a new one (blocking: run off the event loop)."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
            self.created += 1
        return Driver(self._config, keep_deltas=self._config.retarget.mode == "landmarks")

    def release(self, driver: Driver) -> None:
        """Take a driver back after its session ended (reset here, on the caller's thread)."""
        driver.reset()
        with self._lock:
            if len(self._idle) < self._capacity:
                self._idle.append(driver)
                return
        driver.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for driver in idle:
            driver.close()
