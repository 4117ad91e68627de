"""Audio-driven engine jobs: thin consumers of the talking-head generator.

``TalkJob`` (WebRTC output): at each tick of the output cadence (event loop) the generator plans a frame;
its audio (or silence) goes straight to the playout buffer of the WebRTC audio track, and the picture is
rendered on an engine thread, showing what will be heard while it is on screen.
``FramesJob`` (WebSocket frames mode): speech frames rendered as soon as their audio is there (a TTS may be
faster than real time), encoded to JPEG and sent with their speech time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

import numpy as np
import simplejpeg
from livepuppet.engine.clock import Clock
from livepuppet.engine.speech.generator import TalkingHeadGenerator, TalkPlan, TalkSegmentEnd
from livepuppet.streaming.protocol import FrameHeader, ServerEvent, Speaking
from livepuppet.streaming.server.engine_job import EngineJob
from livepuppet.streaming.server.metrics import JobMetrics, Stage

EMA = 0.2
PACKET_S = 0.02  # the WebRTC audio track sends 20 ms packets
MAX_FRAMES_IN_FLIGHT = 8  # frames-mode JPEGs sent but not yet written to the socket (a slow client)

EventSink = Callable[[ServerEvent], None]


class PlayoutSink(Protocol):
    """Where a talk job's audio goes: the WebRTC audio track's buffer (or, from a worker process, a proxy
    of it in the front)."""

    def push(self, samples: np.ndarray) -> None: ...

    def clear(self) -> None: ...

    @property
    def queued_s(self) -> float: ...


class _SpeakingState:
    """Turns frames and segment ends, in emission order, into speaking on/off events."""

    def __init__(self) -> None:
        self.speaking = False

    def events(self, before: tuple[TalkSegmentEnd, ...], speech_t: float | None, t: float,
               after: TalkSegmentEnd | None) -> list[Speaking]:
        out: list[Speaking] = []
        if before and self.speaking:
            self.speaking = False
            out.append(Speaking(state=False, t=round(before[-1].t, 3)))
        if speech_t is not None and not self.speaking:
            self.speaking = True
            out.append(Speaking(state=True, t=round(t, 3)))
        if after is not None and self.speaking:
            self.speaking = False
            out.append(Speaking(state=False, t=round(after.t, 3)))
        return out


class TalkJob(EngineJob):
    """A WebRTC talking head. :meth:`tick` (event loop) plans a frame and hands its audio to ``playout``;
    the engine renders the newest plan (latest wins: a late engine skips frames, never the audio)."""

    kind = "talk"

    def __init__(self, name: str, generator: TalkingHeadGenerator, playout: PlayoutSink, clock: Clock,
                 metrics: JobMetrics) -> None:
        super().__init__(name, clock, metrics)
        self.generator = generator
        self.playout = playout
        self.on_event: EventSink | None = None  # the attached WebSocket (called on the event loop)
        self._lock = threading.Lock()
        self._plan: TalkPlan | None = None
        self._render_s = 0.025  # running estimate of render time: a frame reaches the encoder this much later
        self._speaking = _SpeakingState()
        self.skipped = 0

    def tick(self) -> None:
        """Plan the frame due now (event loop). The frame will show the speech heard when it is on screen:
        its audio waits ``playout.queued_s`` plus half a packet, the picture about one render time."""
        audio_delay = self.playout.queued_s + PACKET_S / 2
        plan = self.generator.advance(True, display_offset_s=self._render_s - audio_delay)
        rate, fps = self.generator.audio_rate, self.generator.fps
        if plan.audio is not None:
            self.playout.push(plan.audio.pcm)
        else:  # silence keeps the audio stream's timeline continuous between utterances
            self.playout.push(np.zeros(round((plan.seq + 1) * rate / fps) - round(plan.seq * rate / fps), np.float32))
        for event in self._speaking.events(plan.before, plan.speech_t, plan.t, plan.after):
            if self.on_event is not None:
                self.on_event(event)
        with self._lock:
            if self._plan is not None:
                self.skipped += 1
            self._plan = plan

    def _has_work(self) -> bool:
        return self._plan is not None

    def _run(self, start_ns: int) -> bool:
        with self._lock:
            plan, self._plan = self._plan, None
        if plan is None:
            return False
        step = self.generator.render(plan)
        done = self._clock.now_ns()
        self._render_s += EMA * ((done - start_ns) / 1e9 - self._render_s)
        self._publish(step.video.pixels, start_ns, step.video.seq, (("tick", start_ns), ("engine_done", done)))
        self._metrics.observe_stage(Stage.RENDER, (done - start_ns) / 1e9)
        self.stats.speech_start_ms = self.generator.stats.speech_start_ms
        self.stats.interrupt_ms = self.generator.stats.interrupt_ms
        return True

    def interrupt(self) -> None:
        """Barge-in: the generator drops queued speech, the playout what it had buffered (≤ one slice)."""
        self.generator.clear_buffer()
        self.playout.clear()

    def close_input(self) -> None:
        self.interrupt()


class JpegEncoder:
    """RGB frames → baseline JPEG bytes, 4:2:0 (libjpeg-turbo through simplejpeg, which takes RGB as it is:
    1.15 ms at 512² on one thread against OpenCV's 1.44 with its RGB→BGR copy, the same size and quality)."""

    def __init__(self, width: int, height: int, quality: int = 85) -> None:
        self.size = (width, height)
        self._quality = int(quality)

    def encode(self, pixels: np.ndarray) -> bytes:
        return bytes(simplejpeg.encode_jpeg(np.ascontiguousarray(pixels), self._quality, colorspace="RGB",
                                            colorsubsampling="420", fastdct=True))


FrameSink = Callable[[FrameHeader, bytes], None]


class FramesJob(EngineJob):
    """Frames mode: each speech frame as soon as the audio (plus the model's look-ahead) covers it, as a
    JPEG stamped with its speech time. ``send`` and ``on_event`` are called on the engine thread and must be
    thread-safe; the sender calls :meth:`sent` once a frame has left, which bounds frames in flight.

    A frame a real-time listener could have heard more than ``max_lag_s`` ago is skipped when a newer one is
    ready (0: never skip): past capacity, or behind a slow client, every session then gets fewer frames, each
    close to its voice, instead of all of them ever later. Speaking events of skipped frames still go out."""

    kind = "frames"

    def __init__(self, name: str, generator: TalkingHeadGenerator, size: int, clock: Clock,
                 metrics: JobMetrics, send: FrameSink, on_event: EventSink, max_lag_s: float = 0.0) -> None:
        super().__init__(name, clock, metrics)
        self.generator = generator
        self._jpeg = JpegEncoder(size, size)
        self._send = send
        self._on_event = on_event
        self._max_lag_s = max_lag_s
        self._speaking = _SpeakingState()
        self._in_flight = 0
        self._lock = threading.Lock()

    def sent(self) -> None:
        with self._lock:
            self._in_flight -= 1

    @property
    def max_lag_s(self) -> float:
        return self._max_lag_s

    def set_max_lag(self, seconds: float) -> None:
        """How late a frame may be before a newer one replaces it (0: every frame); the client's choice."""
        self._max_lag_s = max(0.0, float(seconds))

    def _has_work(self) -> bool:
        with self._lock:
            if self._in_flight >= MAX_FRAMES_IN_FLIGHT:
                return False
        return self.generator.ready()

    def _run(self, start_ns: int) -> bool:
        plan = self.generator.advance(idle=False)
        if plan is None:
            self._emit(tuple(self.generator.pop_ends()), None, 0.0, None)
            return False
        plan = self._newest_in_time(plan)
        step = self.generator.render(plan)
        t_render = self._clock.now_ns()
        jpeg = self._jpeg.encode(step.video.pixels)
        self._metrics.observe_stage(Stage.RENDER, (t_render - start_ns) / 1e9)
        self._metrics.observe_stage(Stage.ENCODE, (self._clock.now_ns() - t_render) / 1e9)
        with self._lock:
            self._in_flight += 1
        self._emit(step.before, step.video.speech_t, step.video.t, None)
        self._send(FrameHeader(seq=step.video.seq, epoch=step.video.epoch, t=step.video.t), jpeg)
        self._emit((), None, step.video.t, step.after)
        return True

    def _newest_in_time(self, plan: TalkPlan) -> TalkPlan:
        """``plan``, or, while it is later than ``max_lag_s`` and a newer frame is ready, the newer one (the
        skipped frames' speaking events are sent; a segment's first-audio stamp moves to the frame shown)."""
        if self._max_lag_s <= 0:
            return plan
        while self.generator.lag_s(plan) > self._max_lag_s:
            newer = self.generator.advance(idle=False)
            if newer is None:
                break
            self._emit(plan.before, plan.speech_t, plan.t, plan.after)
            self.stats.frames_skipped += 1
            self._metrics.count_late_frames()
            if plan.speech_arrived_ns is not None and newer.speech_arrived_ns is None:
                newer = replace(newer, speech_arrived_ns=plan.speech_arrived_ns)
            plan = newer
        return plan

    def _emit(self, before: tuple[TalkSegmentEnd, ...], speech_t: float | None, t: float,
              after: TalkSegmentEnd | None) -> None:
        for event in self._speaking.events(before, speech_t, t, after):
            self._on_event(event)
