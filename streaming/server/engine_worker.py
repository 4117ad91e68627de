"""Engine threads shared by every session: round robin over the sessions that have a new input frame.

The engine is synchronous (MediaPipe, NumPy and OpenCV release the GIL), so it runs here, off the
asyncio loop. Each session contributes an :class:`EngineJob`; a worker picks the next job with pending
input after the one it served last, so one busy session cannot starve the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class EngineJob(Protocol):
    """One session's engine work. ``pending`` must be cheap; ``step`` processes the newest input frame."""

    name: str

    def pending(self) -> bool: ...

    def step(self) -> None: ...

    def charge(self, cost_ns: int) -> None:
        """What the last :meth:`step` cost, on the worker's cost clock (its cores' worth of time)."""


class EngineWorker:
    """``threads`` engine threads serving all attached jobs fairly; :meth:`notify` wakes them.

    ``cost_clock`` measures what a step costs: wall time by default; a worker process with one engine thread
    passes its process CPU time, which, unlike wall time, does not grow when other processes hold the cores
    (the cost then places and admits sessions)."""

    def __init__(self, threads: int = 1, name: str = "livepuppet-engine",
                 cost_clock: Callable[[], int] = time.monotonic_ns) -> None:
        self._jobs: list[EngineJob] = []
        self._running: set[int] = set()
        self._cursor = 0
        self._cost_clock = cost_clock
        self.busy_ns = 0  # cost of stepping jobs, all threads (the worker's load)
        self._cv = threading.Condition()
        self._closed = False
        self._threads = [threading.Thread(target=self._loop, name=f"{name}-{i}", daemon=True) for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def add(self, job: EngineJob) -> None:
        with self._cv:
            self._jobs.append(job)
            self._cv.notify_all()

    def remove(self, job: EngineJob, timeout: float = 10.0) -> None:
        """Detach ``job``; returns once no thread is running it, so its resources can be freed."""
        with self._cv:
            if job in self._jobs:
                self._jobs.remove(job)
            if not self._cv.wait_for(lambda: id(job) not in self._running, timeout):
                log.warning("engine job %s still running after %.1f s", job.name, timeout)

    def notify(self) -> None:
        """Wake a thread: some job may have new input (called by input rings, from any thread)."""
        with self._cv:
            self._cv.notify_all()

    @property
    def job_count(self) -> int:
        with self._cv:
            return len(self._jobs)

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        for thread in self._threads:
            thread.join(timeout=10.0)

    def _next_job(self) -> EngineJob | None:
        count = len(self._jobs)
        for offset in range(count):
            index = (self._cursor + offset) % count
            job = self._jobs[index]
            if id(job) not in self._running and job.pending():
                self._cursor = index + 1
                return job
        return None

    def _loop(self) -> None:
        while True:
            with self._cv:
                job = None
                while not self._closed and (job := self._next_job()) is None:
                    self._cv.wait()
                if self._closed or job is None:
                    return
                self._running.add(id(job))
            start = self._cost_clock()
            try:
                job.step()
            except Exception:  # a job's failure must not kill the thread that serves every session
                log.exception("engine job %s failed", job.name)
            finally:
                cost = self._cost_clock() - start
                job.charge(cost)
                with self._cv:
                    self.busy_ns += cost
                    self._running.discard(id(job))
                    self._cv.notify_all()
