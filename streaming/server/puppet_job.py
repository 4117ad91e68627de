"""Video-driven engine jobs: the newest webcam frame → motion → avatar frame, on an engine thread.

``PuppetJob`` drives a portrait from a face video; ``EchoJob`` returns the input untouched through the
same rings and tracks (the baseline of the latency harness). Both take the newest frame of their input
ring and publish to every output ring (the WebRTC track, WHEP viewers, a virtual camera).
"""

from __future__ import annotations

import threading

import numpy as np
from livepuppet.engine.clock import Clock
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.pipeline import Animator
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.types import VideoFrame
from livepuppet.streaming.frame_ring import FrameSource, HeldFrame, RingStats
from livepuppet.streaming.latency_probe import copy_probe
from livepuppet.streaming.server.controls import Controls
from livepuppet.streaming.server.driver_pool import DriverPool
from livepuppet.streaming.server.engine_job import EngineJob, Stamps
from livepuppet.streaming.server.metrics import JobMetrics, Stage


class InputRingJob(EngineJob):
    """Shared by jobs fed by a video input ring: take the newest frame, process it, publish the result."""

    def __init__(self, name: str, clock: Clock, metrics: JobMetrics, input_ring: FrameSource) -> None:
        super().__init__(name, clock, metrics)
        self.input = input_ring
        self._last_seq = -1

    def _has_work(self) -> bool:
        return self.input.has_newer(self._last_seq)

    def input_stats(self) -> RingStats:
        return self.input.stats()

    def close_input(self) -> None:
        self.input.close()

    def _run(self, start_ns: int) -> bool:
        frame = self.input.take(self._last_seq)
        if frame is None:
            return False
        with frame:  # the input slot stays ours until the outputs have copied what they need
            self._metrics.observe_stage(Stage.QUEUE, (start_ns - frame.pts) / 1e9)
            self._last_seq = frame.seq
            pixels, stamps = self._process(frame)
            done = self._clock.now_ns()
            self._publish(pixels, frame.pts, frame.seq,
                          (*frame.stamps, ("dequeue", start_ns), *stamps, ("engine_done", done)))
        return True

    def _process(self, frame: HeldFrame) -> tuple[np.ndarray, Stamps]:
        raise NotImplementedError


class PuppetJob(InputRingJob):
    """Webcam frames drive the portrait. Controls are applied between frames, on the engine thread."""

    kind = "puppet"

    def __init__(self, name: str, source: PreparedSource, config: EngineConfig, clock: Clock,
                 metrics: JobMetrics, input_ring: FrameSource, drivers: DriverPool) -> None:
        super().__init__(name, clock, metrics, input_ring)
        self._retarget = config.retarget
        self._drivers = drivers
        self._animator = Animator(source, config, clock)
        self._driver = drivers.acquire()  # last: nothing after it can fail and leak the driver
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

    def _process(self, frame: HeldFrame) -> tuple[np.ndarray, Stamps]:
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
        self._metrics.observe_stage(Stage.TRACK, (t_track - t0) / 1e9)
        self._metrics.observe_stage(Stage.RETARGET, (stages["retarget"] - t_track) / 1e9)
        self._metrics.observe_stage(Stage.RENDER, (stages["render"] - stages["retarget"]) / 1e9)
        return pixels, (("track", t_track), *out.crop.stage_ns)

    def close(self) -> None:
        self._drivers.release(self._driver)


class EchoJob(InputRingJob):
    """The input sent back untouched: same rings, tracks and encoder, no engine work."""

    kind = "echo"

    def _process(self, frame: HeldFrame) -> tuple[np.ndarray, Stamps]:
        return frame.pixels, ()
