"""Audio-driven sessions on the engine thread.

``TalkJob`` (WebRTC output): one frame per tick of the output cadence, showing the mouth at the audio
playout cursor, so picture and sound leave together; idle life (blinks, sway) when nothing is said.
``FramesTalkJob`` (WebSocket output): one JPEG per 1/fps of received speech, as fast as audio arrives
(a TTS may be faster than real time), each stamped with its speech time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from fractions import Fraction

import av
import numpy as np
from livepuppet.engine.clock import Clock
from livepuppet.engine.speech.talking_head import TalkingHead
from livepuppet.streaming.frame_ring import FrameRing, RingFanout, RingStats
from livepuppet.streaming.server.audio_playout import AudioPlayout
from livepuppet.streaming.server.metrics import ServerMetrics
from livepuppet.streaming.server.puppet_job import JobStats

log = logging.getLogger(__name__)

EMA = 0.2
AUDIO_FRAME_CENTRE_S = 0.01  # the 20 ms audio packet just handed out is centred 10 ms before the cursor
MAX_FRAMES_IN_FLIGHT = 8  # frames-mode JPEGs rendered but not yet sent (backpressure on a slow client)


class TalkJob:
    """Renders the talking head at the output cadence; :meth:`tick` (event loop) asks for a frame."""

    def __init__(self, name: str, head: TalkingHead, playout: AudioPlayout, clock: Clock,
                 metrics: ServerMetrics) -> None:
        self.name = name
        self.head = head
        self.playout = playout
        self.stats = JobStats()
        self.failed = False
        self._clock = clock
        self._metrics = metrics
        self._t0 = clock.now_ns()
        self._outputs = RingFanout()
        self._tick = threading.Event()
        self._seq = 0
        self._render_s = 0.025  # running estimate of render time: the frame will leave this much later
        self._was_speaking = False
        self._interrupted_ns: int | None = None

    def mark_interrupt(self) -> None:
        """An interrupt was received now (for the interrupt → idle-frame figure)."""
        self._interrupted_ns = self._clock.now_ns()

    def add_output(self, ring: FrameRing) -> None:
        self._outputs.add(ring)

    def remove_output(self, ring: FrameRing) -> None:
        self._outputs.remove(ring)

    def input_stats(self) -> RingStats:
        return RingStats()

    def close_input(self) -> None:
        self.playout.clear()

    def tick(self) -> None:
        self._tick.set()

    def pending(self) -> bool:
        return self._tick.is_set() and not self.failed

    def speech_time(self) -> float | None:
        """Speech instant the next frame must show: where playback will be when the frame goes out."""
        if not self.playout.playing:  # before the pre-roll is reached the sound has not started either
            return None
        return max(0.0, self.playout.cursor_s - AUDIO_FRAME_CENTRE_S + self._render_s)

    def step(self) -> None:
        self._tick.clear()
        start = self._clock.now_ns()
        speech_t = self.speech_time()
        try:
            out = self.head.render(speech_t, (start - self._t0) / 1e9, self._seq)
        except Exception as exc:  # a failing frame is dropped and counted; the stream repeats the last one
            self.stats.errors += 1
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            self._metrics.engine_errors.inc()
            log.warning("talk session %s: frame dropped: %s", self.name, self.stats.last_error)
            return
        done = self._clock.now_ns()
        self._render_s += EMA * ((done - start) / 1e9 - self._render_s)
        self._outputs.write(out.crop.pixels, start, self._seq, (("tick", start), ("engine_done", done)))
        self._seq += 1
        self.stats.frames_out += 1
        self.stats.engine_ms.append((done - start) / 1e6)
        self.stats.out_times_ns.append(done)
        self._metrics.observe_stage("render", (done - start) / 1e9)
        arrived = self.playout.speech_arrived_ns
        if speech_t is not None and not self._was_speaking and arrived is not None:
            self.stats.speech_start_ms = (done - arrived) / 1e6
        if speech_t is None and self._interrupted_ns is not None:
            self.stats.interrupt_ms = (done - self._interrupted_ns) / 1e6
            self._interrupted_ns = None
        self._was_speaking = speech_t is not None

    def close(self) -> None:
        """Nothing native to free (the renderer is NumPy/OpenCV only)."""


class JpegEncoder:
    """RGB frames → JPEG bytes with PyAV's MJPEG encoder."""

    def __init__(self, width: int, height: int, quality: int = 4) -> None:
        self._codec = av.CodecContext.create("mjpeg", "w")
        self._codec.width, self._codec.height = width, height
        self._codec.pix_fmt = "yuvj420p"
        self._codec.time_base = Fraction(1, 1000)
        self._codec.options = {"qmin": str(quality), "qmax": str(quality)}

    def encode(self, pixels: np.ndarray) -> bytes:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24").reformat(format="yuvj420p")
        return b"".join(bytes(p) for p in self._codec.encode(frame))  # type: ignore[attr-defined]


class FramesTalkJob:
    """Frames mode: renders speech time i/fps as soon as audio (plus the model's look-ahead) covers it."""

    def __init__(self, name: str, head: TalkingHead, fps: float, size: int, clock: Clock, metrics: ServerMetrics,
                 send: Callable[[int, float, int, bytes], None]) -> None:
        self.name = name
        self.head = head
        self.stats = JobStats()
        self.failed = False
        self._fps = fps
        self._clock = clock
        self._metrics = metrics
        self._send = send  # (seq, speech time s, epoch, jpeg) → the WebSocket (thread-safe)
        self._jpeg = JpegEncoder(size, size)
        self._lock = threading.Lock()
        self._index = 0  # next frame on the current epoch's speech timeline
        self._seq = 0
        self._epoch = 0
        self._ended_at: float | None = None  # speech time when the client said "end"
        self.in_flight = 0

    def input_stats(self) -> RingStats:
        return RingStats()

    def mark_end(self) -> None:
        with self._lock:
            self._ended_at = self.head.received_s

    def interrupt(self) -> None:
        """Drop unrendered speech; a new epoch (speech time 0) starts."""
        with self._lock:
            self._index = 0
            self._epoch += 1
            self._ended_at = None

    def sent(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _next_time(self) -> float | None:
        t = self._index / self._fps
        ready_until = self.head.timeline.mouth_until
        if t + self.head.lookahead_s <= ready_until or (self._ended_at is not None and t < self._ended_at):
            return t
        return None

    def pending(self) -> bool:
        with self._lock:
            return not self.failed and self.in_flight < MAX_FRAMES_IN_FLIGHT and self._next_time() is not None

    def step(self) -> None:
        with self._lock:
            t = self._next_time()
            if t is None:
                return
            seq, epoch = self._seq, self._epoch
            self._index += 1
            self._seq += 1
            self.in_flight += 1
        start = self._clock.now_ns()
        out = self.head.render(t, t, seq)
        jpeg = self._jpeg.encode(out.crop.pixels)
        done = self._clock.now_ns()
        self.stats.frames_out += 1
        self.stats.engine_ms.append((done - start) / 1e6)
        self.stats.out_times_ns.append(done)
        self._metrics.observe_stage("render", (done - start) / 1e9)
        self._send(seq, t, epoch, jpeg)

    def close(self) -> None:
        """Nothing native to free."""
