"""Prometheus metrics of one server instance (its own registry: no process-wide globals)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Per-stage latency buckets (seconds): 1 ms .. 1 s, dense where real-time frames live.
LATENCY_BUCKETS = (0.001, 0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.030, 0.040, 0.060, 0.080, 0.120,
                   0.200, 0.500, 1.0)
# Event-loop lateness buckets (seconds): a few ms is normal, one 25 fps frame (40 ms) is felt, 0.2 s a freeze.
LOOP_LAG_BUCKETS = (0.002, 0.005, 0.010, 0.020, 0.040, 0.080, 0.120, 0.200, 0.300, 0.500, 1.0, 2.0)


class Stage(str, Enum):
    """The stage labels of ``livepuppet_stage_seconds``: one meaning each, whatever the session kind."""

    QUEUE = "queue"  # input frame received → taken by the engine
    TRACK = "track"  # face tracking + motion estimate of one driver frame
    RETARGET = "retarget"  # motion → target landmarks
    RENDER = "render"  # the renderer alone (mesh warp or neural), one frame
    ENCODE = "encode"  # frame → JPEG (frames mode)
    ENGINE = "engine"  # one whole engine step of a session (everything above it did)
    SERVER = "server"  # input received (or talk frame due) → output frame handed to the encoder



class JobMetrics(Protocol):
    """What an engine job reports while it runs: the server's registry in the server process, a
    :class:`FigureLog` in an engine worker process (whose figures the front replays into its registry)."""

    def observe_stage(self, stage: Stage, seconds: float) -> None: ...

    def count_engine_error(self) -> None: ...

    def count_late_frames(self, frames: int = 1) -> None:
        """Frames skipped because a real-time listener would have heard their speech too long ago."""


@dataclass(frozen=True, slots=True)
class Figures:
    """What a worker measured since its last report, sent with its stats."""

    stages: tuple[tuple[str, float], ...] = ()  # (stage, seconds)
    engine_errors: int = 0
    late_frames: int = 0


class FigureLog:
    """An engine worker process's :class:`JobMetrics`: it keeps what its jobs measured until the next report
    (:meth:`take`), for the front to replay into the registry it exports."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stages: list[tuple[str, float]] = []
        self._errors = 0
        self._late = 0

    def observe_stage(self, stage: Stage, seconds: float) -> None:
        with self._lock:
            self._stages.append((stage.value, seconds))

    def count_engine_error(self) -> None:
        with self._lock:
            self._errors += 1

    def count_late_frames(self, frames: int = 1) -> None:
        with self._lock:
            self._late += frames

    def take(self) -> Figures:
        """What was measured since the last call."""
        with self._lock:
            figures = Figures(tuple(self._stages), self._errors, self._late)
            self._stages.clear()
            self._errors = self._late = 0
        return figures


@dataclass(frozen=True)
class ServerMetrics:
    """Every metric the server exports, prefixed ``livepuppet_``."""

    registry: CollectorRegistry
    stage_seconds: Histogram
    frames_in: Counter
    frames_out: Counter
    frames_dropped: Counter
    frames_repeated: Counter
    engine_errors: Counter
    sessions: Gauge
    sessions_started: Counter
    sessions_rejected: Counter
    engine_fps: Gauge
    http_errors: Counter
    audio_chunks: Counter
    engine_load: Gauge
    engine_capacity: Gauge
    front_load: Gauge
    worker_load: Gauge
    worker_sessions: Gauge
    worker_up: Gauge
    worker_restarts: Gauge
    loop_lag: Histogram

    @classmethod
    def create(cls) -> ServerMetrics:
        r = CollectorRegistry()
        return cls(
            registry=r,
            stage_seconds=Histogram("livepuppet_stage_seconds", "Time spent per pipeline stage; 'server' is "
                                    "frame received to avatar frame handed to the encoder", ["stage"],
                                    buckets=LATENCY_BUCKETS, registry=r),
            frames_in=Counter("livepuppet_frames_in", "Input video frames received", registry=r),
            frames_out=Counter("livepuppet_frames_out", "Output video frames sent (repeats included)", registry=r),
            frames_dropped=Counter("livepuppet_frames_dropped", "Frames skipped because a newer one arrived",
                                   ["where"], registry=r),
            frames_repeated=Counter("livepuppet_frames_repeated", "Output frames repeated because the engine "
                                    "was late", registry=r),
            engine_errors=Counter("livepuppet_engine_errors", "Frames that failed in the engine", registry=r),
            sessions=Gauge("livepuppet_sessions", "Sessions open now", ["kind"], registry=r),
            sessions_started=Counter("livepuppet_sessions_started", "Sessions started", ["kind"], registry=r),
            sessions_rejected=Counter("livepuppet_sessions_rejected", "Sessions refused", ["reason"], registry=r),
            engine_fps=Gauge("livepuppet_engine_fps", "Frames per second the engine produced (all sessions, "
                             "last second)", registry=r),
            http_errors=Counter("livepuppet_http_errors", "HTTP requests answered with an error", ["status"],
                                registry=r),
            audio_chunks=Counter("livepuppet_audio_chunks", "Audio chunks received over WebSocket", registry=r),
            engine_load=Gauge("livepuppet_engine_load_cores", "Engine work being done, in busy cores (measured)",
                              registry=r),
            engine_capacity=Gauge("livepuppet_engine_capacity_cores", "Engine cores available (admission refuses "
                                  "new sessions past capacity × (1 - server.capacity_margin))", registry=r),
            front_load=Gauge("livepuppet_front_load_cores", "Cores the server process itself used (HTTP, WebRTC "
                             "decoding and encoding; with worker processes, what their capacity leaves out)",
                             registry=r),
            worker_load=Gauge("livepuppet_worker_load_cores", "Busy cores per engine worker process", ["worker"],
                              registry=r),
            worker_sessions=Gauge("livepuppet_worker_sessions", "Sessions placed on each engine worker process",
                                  ["worker"], registry=r),
            worker_up=Gauge("livepuppet_worker_up", "1 while an engine worker process runs", ["worker"], registry=r),
            worker_restarts=Gauge("livepuppet_worker_restarts", "Engine worker processes restarted after dying",
                                  registry=r),
            loop_lag=Histogram("livepuppet_loop_lag_seconds", "How late the server's event loop woke for a timer "
                               "(sampled every 50 ms); every session waits on this loop", buckets=LOOP_LAG_BUCKETS,
                               registry=r),
        )

    def observe_stage(self, stage: Stage, seconds: float) -> None:
        self.stage_seconds.labels(stage.value).observe(max(0.0, seconds))

    def count_engine_error(self) -> None:
        self.engine_errors.inc()

    def count_late_frames(self, frames: int = 1) -> None:
        self.frames_dropped.labels("late").inc(frames)

    def replay(self, figures: Figures) -> None:
        """What a worker process measured (its :class:`FigureLog`), into this registry."""
        for stage, seconds in figures.stages:
            self.observe_stage(Stage(stage), seconds)
        if figures.engine_errors:
            self.engine_errors.inc(figures.engine_errors)
        if figures.late_frames:
            self.count_late_frames(figures.late_frames)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
