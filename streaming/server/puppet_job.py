"""A session's engine work: newest webcam frame → motion → avatar frame, on an engine thread.

``PuppetJob`` drives a portrait from a face video; ``EchoJob`` returns the input untouched through the
same rings and tracks (the baseline of the latency harness). Both take the newest input frame from their
input ring and publish to every output ring (the WebRTC track, WHEP viewers, a virtual camera).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from livepuppet.engine.clock import Clock
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.pipeline import Animator
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.types import VideoFrame
from livepuppet.streaming.frame_ring import FrameRing, RingFanout, RingFrame, RingStats
from livepuppet.streaming.latency_probe import copy_probe
from livepuppet.streaming.server.controls import Controls
from livepuppet.streaming.server.driver_pool import DriverPool
from livepuppet.streaming.server.metrics import ServerMetrics

log = logging.getLogger(__name__)

FAIL_AFTER = 30  # consecutive failing frames before a session is declared broken


@dataclass(slots=True)
class JobStats:
    """What a session reports to its page (read from the event loop, written by the engine thread)."""

    frames_out: int = 0
    errors: int = 0
    face_found: bool = False
    last_error: str = ""
    speech_start_ms: float = 0.0  # talk: audio arrived → first frame showing it, handed to the encoder
    interrupt_ms: float = 0.0  # talk: interrupt received → first idle frame handed to the encoder
    engine_ms: deque[float] = field(default_factory=lambda: deque(maxlen=120))
    out_times_ns: deque[int] = field(default_factory=lambda: deque(maxlen=61))

    def fps(self, now_ns: int | None = None) -> float:
        """Output frames per second over the last ~60 frames; 0 if nothing came out in the 2 s before
        ``now_ns`` (when given)."""
        if len(self.out_times_ns) < 2 or (now_ns is not None and now_ns - self.out_times_ns[-1] > 2e9):
            return 0.0
        span = (self.out_times_ns[-1] - self.out_times_ns[0]) / 1e9
        return (len(self.out_times_ns) - 1) / span if span > 0 else 0.0


class _RingJob:
    """Shared plumbing: input ring, fan-out to output rings, stats and metrics."""

    def __init__(self, name: str, clock: Clock, metrics: ServerMetrics, input_ring: FrameRing) -> None:
        self.name = name
        self.stats = JobStats()
        self.input = input_ring
        self._clock = clock
        self._metrics = metrics
        self._outputs = RingFanout()
        self._last_seq = -1
        self._failures = 0
        self.failed = False

    def add_output(self, ring: FrameRing) -> None:
        self._outputs.add(ring)

    def remove_output(self, ring: FrameRing) -> None:
        self._outputs.remove(ring)

    def pending(self) -> bool:
        return not self.failed and self.input.has_newer(self._last_seq)

    def input_stats(self) -> RingStats:
        return self.input.stats()

    def close_input(self) -> None:
        """No more input: wake anything waiting on the ring."""
        self.input.close()

    def step(self) -> None:
        frame = self.input.take(self._last_seq)
        if frame is None:
            return
        with frame:  # the input slot stays ours until the outputs have copied what they need
            start = self._clock.now_ns()
            self._metrics.observe_stage("queue", (start - frame.pts) / 1e9)
            self._last_seq = frame.seq
            try:
                pixels, stamps = self._process(frame)
            except Exception as exc:  # one bad frame is dropped and counted; the session goes on
                self._fail_frame(exc)
                return
            self._failures = 0
            done = self._clock.now_ns()
            all_stamps = (*frame.stamps, ("dequeue", start), *stamps, ("engine_done", done))
            self._outputs.write(pixels, frame.pts, frame.seq, all_stamps)
        self.stats.frames_out += 1
        self.stats.engine_ms.append((done - start) / 1e6)
        self.stats.out_times_ns.append(done)
        self._metrics.observe_stage("engine", (done - start) / 1e9)

    def _fail_frame(self, exc: Exception) -> None:
        self.stats.errors += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        self._metrics.engine_errors.inc()
        self._failures += 1
        log.warning("session %s: frame dropped: %s", self.name, self.stats.last_error)
        if self._failures >= FAIL_AFTER:
            self.failed = True
            log.error("session %s: %d frames failed in a row; giving up", self.name, self._failures)

    def _process(self, frame: RingFrame) -> tuple[np.ndarray, tuple[tuple[str, int], ...]]:
        raise NotImplementedError

    def close(self) -> None:
        """Free engine resources; called after the worker has detached the job."""


class PuppetJob(_RingJob):
    """Webcam frames drive the portrait. Controls are applied between frames, on the engine thread."""

    def __init__(self, name: str, source: PreparedSource, config: EngineConfig, clock: Clock,
                 metrics: ServerMetrics, input_ring: FrameRing, drivers: DriverPool) -> None:
        super().__init__(name, clock, metrics, input_ring)
        self._config = config
        self._retarget = config.retarget
        self._drivers = drivers
        self._driver = drivers.acquire()
        self._animator = Animator(source, config, clock)
        self._probe = config.server.latency_probe
        self._pending_controls: list[Controls] = []
        self._controls_lock = threading.Lock()

    def control(self, controls: Controls) -> None:
        """Queue new controls (from the event loop); they apply before the next frame."""
        with self._controls_lock:
            self._pending_controls.append(controls)

    def _apply_controls(self) -> None:
        with self._controls_lock:
            pending, self._pending_controls = self._pending_controls, []
        for controls in pending:
            if controls.changes_retarget():
                self._retarget = controls.apply(self._retarget)
                self._animator.reconfigure(self._retarget)
            if controls.reset_neutral:
                self._driver.calibrate()  # eased in by the driver; the motion filter keeps its state

    def _process(self, frame: RingFrame) -> tuple[np.ndarray, tuple[tuple[str, int], ...]]:
        self._apply_controls()
        now = self._clock.now_ns
        t0 = now()
        motion = self._driver.motion(VideoFrame(pixels=frame.pixels, pts=frame.pts, seq=frame.seq))
        t_track = now()
        self.stats.face_found = motion.face_found
        out = self._animator.animate(motion, full=False)
        pixels = out.crop.pixels
        if self._probe:
            copy_probe(frame.pixels, pixels)
        stages = dict(out.crop.stage_ns)
        self._metrics.observe_stage("track", (t_track - t0) / 1e9)
        self._metrics.observe_stage("retarget", (stages["retarget"] - t_track) / 1e9)
        self._metrics.observe_stage("render", (stages["render"] - stages["retarget"]) / 1e9)
        return pixels, (("track", t_track), *out.crop.stage_ns)

    def close(self) -> None:
        self._drivers.release(self._driver)


class EchoJob(_RingJob):
    """The input sent back untouched: same rings, tracks and encoder, no engine work."""

    def _process(self, frame: RingFrame) -> tuple[np.ndarray, tuple[tuple[str, int], ...]]:
        return frame.pixels, ()
