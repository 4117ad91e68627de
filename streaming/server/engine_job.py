"""The one contract between a session and the engine worker: :class:`EngineJob`, with the bookkeeping
every job shares written once (output fan-out, stats, failure counting). The worker calls ``pending`` and
``step``; the session manager everything else named here, and nothing more.

Failure is reported one way: a step that raises is dropped, counted and logged (the output repeats its
last frame); ``FAIL_AFTER`` failures in a row mark the job :attr:`~EngineJob.failed`, the worker stops
stepping it and the reaper closes its session.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from livepuppet.engine.clock import Clock
from livepuppet.errors import InputError
from livepuppet.streaming.frame_ring import FrameSink, RingFanout, RingStats
from livepuppet.streaming.server.controls import Controls
from livepuppet.streaming.server.metrics import JobMetrics, Stage

log = logging.getLogger(__name__)

FAIL_AFTER = 30  # consecutive failing steps before a job is declared broken
UNMEASURED_CORES = 0.3  # cores a job is assumed to cost until its engine time has been measured
COST_WINDOW = 100  # frames over which a job's cost per frame is averaged (4 s at 25 fps)
MIN_COST_FRAMES = 10  # frames in that window before the cost counts as measured
Stamps = tuple[tuple[str, int], ...]


@dataclass(slots=True)
class JobStats:
    """What a session reports (written by the engine thread, read from the event loop)."""

    frames_out: int = 0
    frames_skipped: int = 0  # frames mode: frames not rendered because a newer one was ready and they were late
    errors: int = 0
    face_found: bool = False
    last_error: str = ""
    speech_start_ms: float = 0.0  # talk: audio arrived → first frame showing it rendered
    interrupt_ms: float = 0.0  # talk: interrupt received → first idle frame rendered
    engine_ms: deque[float] = field(default_factory=lambda: deque(maxlen=120))
    out_times_ns: deque[int] = field(default_factory=lambda: deque(maxlen=61))
    cost_ms: float = 0.0  # engine cost per output frame (all the job's steps), 0 until measured
    _costs: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=COST_WINDOW))
    _cost_total_ns: int = 0

    def fps(self, now_ns: int | None = None) -> float:
        """Output frames per second over the last ~60 frames; 0 if nothing came out in the 2 s before
        ``now_ns`` (when given)."""
        if len(self.out_times_ns) < 2 or (now_ns is not None and now_ns - self.out_times_ns[-1] > 2e9):
            return 0.0
        span = (self.out_times_ns[-1] - self.out_times_ns[0]) / 1e9
        return (len(self.out_times_ns) - 1) / span if span > 0 else 0.0

    def engine_percentile(self, q: float) -> float:
        ms = sorted(self.engine_ms)
        return round(ms[min(len(ms) - 1, int(q * len(ms)))], 2) if ms else 0.0

    def charge(self, cost_ns: int) -> None:
        """Add one step's cost; :attr:`cost_ms` becomes the cost per frame over the last frames, every step
        between them included (a talking head's speech analysis gives no frame of its own)."""
        self._cost_total_ns += cost_ns
        if self._costs and self._costs[-1][0] == self.frames_out:
            return  # no frame since the last: the cost counts towards the next one
        self._costs.append((self.frames_out, self._cost_total_ns))
        frames = self._costs[-1][0] - self._costs[0][0]
        if frames >= MIN_COST_FRAMES:
            self.cost_ms = (self._costs[-1][1] - self._costs[0][1]) / frames / 1e6

    def cores_needed(self, fps: float) -> float:
        """Cores the job needs at ``fps``: its cost per frame (see :meth:`charge`), else its median engine
        ms per frame, else :data:`UNMEASURED_CORES`."""
        ms = self.cost_ms or self.engine_percentile(0.5)
        return fps * ms / 1000.0 if ms > 0 else UNMEASURED_CORES


class EngineJob(ABC):
    """One session's engine work. Subclasses say when there is work (:meth:`_has_work`) and do one unit of
    it (:meth:`_run`), returning True when a frame came out; everything else is shared."""

    kind: str = "job"

    def __init__(self, name: str, clock: Clock, metrics: JobMetrics) -> None:
        self.name = name
        self.stats = JobStats()
        self._clock = clock
        self._metrics = metrics
        self._outputs = RingFanout()
        self._failures = 0
        self._failed = False
        self._cost_lock = threading.Lock()  # the job's steps and its speech work may run on two threads

    # -- called by the engine worker (engine threads) ---------------------------------------------------

    def pending(self) -> bool:
        """Cheap: is there work now? Never for a failed job."""
        return not self._failed and self._has_work()

    def step(self) -> None:
        """One unit of work; an exception drops it and counts towards :data:`FAIL_AFTER`."""
        start = self._clock.now_ns()
        try:
            produced = self._run(start)
        except Exception as exc:  # a failing frame is dropped and counted; the stream repeats the last one
            self._fail(exc)
            return
        self._failures = 0
        if produced:
            done = self._clock.now_ns()
            self.stats.frames_out += 1
            self.stats.engine_ms.append((done - start) / 1e6)
            self.stats.out_times_ns.append(done)
            self._metrics.observe_stage(Stage.ENGINE, (done - start) / 1e9)

    @abstractmethod
    def _has_work(self) -> bool: ...

    @abstractmethod
    def _run(self, start_ns: int) -> bool: ...

    def charge(self, cost_ns: int) -> None:
        """What a step of this job (or of work done for it, e.g. its speech analysis) cost the worker."""
        with self._cost_lock:
            self.stats.charge(cost_ns)

    # -- called by the session manager (event loop) ------------------------------------------------------

    @property
    def failed(self) -> bool:
        return self._failed

    def add_output(self, ring: FrameSink) -> None:
        self._outputs.add(ring)

    def remove_output(self, ring: FrameSink) -> None:
        self._outputs.remove(ring)

    def input_stats(self) -> RingStats:
        """Counters of the job's input ring (none for audio-driven jobs)."""
        return RingStats()

    def close_input(self) -> None:
        """No more input is coming: wake anything waiting for it (nothing to do by default)."""
        return None

    def control(self, controls: Controls) -> None:
        """Live controls from the client; jobs without any refuse them."""
        raise InputError(f"a {self.kind} session has no live controls")

    def close(self) -> None:
        """Free engine resources; called once, after the worker has detached the job (none by default)."""
        return None

    # -- shared by subclasses ----------------------------------------------------------------------------

    def _publish(self, pixels: np.ndarray, pts: int, seq: int, stamps: Stamps) -> None:
        self._outputs.write(pixels, pts, seq, stamps)

    def _fail(self, exc: Exception) -> None:
        self.stats.errors += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        self._metrics.count_engine_error()
        self._failures += 1
        log.warning("session %s: step dropped: %s", self.name, self.stats.last_error)
        if self._failures >= FAIL_AFTER:
            self._failed = True
            log.error("session %s: %d steps failed in a row; giving up", self.name, self._failures)
