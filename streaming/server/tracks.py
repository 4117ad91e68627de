"""aiortc media tracks at the edges of the frame rings.

``RingVideoTrack`` sends the newest engine frame as soon as it exists and, when the engine is late,
repeats the last one so the stream keeps its cadence (and, while it stays late, only a few times a
second). ``pump_video`` feeds a received track into an input ring (decoding to RGB off the event loop).
"""

from __future__ import annotations

import asyncio
import fractions
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import cast

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from livepuppet.engine.clock import Clock
from livepuppet.streaming.event_wait import wait_event
from livepuppet.streaming.frame_ring import FrameRing, FrameSink
from livepuppet.streaming.server.audio_playout import AudioPlayout
from livepuppet.streaming.server.metrics import ServerMetrics, Stage

log = logging.getLogger(__name__)

VIDEO_CLOCK_RATE = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)
HOLD_FRAMES = 1.5  # repeat the last frame when nothing new came for this many frame intervals ...
REPEAT_HOLD_S = 0.25  # ... and after a repeat, wait this long for a new one before repeating again


class RingVideoTrack(MediaStreamTrack):
    """Video track fed by an output :class:`FrameRing` (written by the engine thread)."""

    kind = "video"

    def __init__(self, ring_capacity: int, fps: float, clock: Clock, metrics: ServerMetrics,
                 placeholder: np.ndarray, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._new = asyncio.Event()
        self.ring = FrameRing(ring_capacity, on_write=lambda: loop.call_soon_threadsafe(self._new.set))
        self._interval = 1.0 / fps
        self._clock = clock
        self._metrics = metrics
        self._last = av.VideoFrame.from_ndarray(np.ascontiguousarray(placeholder), format="rgb24")
        self._last_seq = -1
        self._start_ns: int | None = None
        self._last_sent_ns = 0
        self._repeating = False
        self.sent = 0
        self.repeated = 0

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = self._clock.now_ns()
        if self._start_ns is None:
            self._start_ns = now
        # Never send faster than the cadence (a burst would only be dropped by the receiver) ...
        earliest = self._last_sent_ns + int(0.5 * self._interval * 1e9)
        if self._last_sent_ns and now < earliest:
            await asyncio.sleep((earliest - now) / 1e9)
        # ... and never wait longer than HOLD_FRAMES intervals for a new frame: repeat the last instead. A
        # repeat keeps the cadence through a hiccup; an engine that stays late (overload) gets a repeat only
        # every REPEAT_HOLD_S, as a keep-alive: encoding the same picture at full rate took CPU from the engine.
        if not self.ring.has_newer(self._last_seq):
            self._new.clear()
            if not self.ring.has_newer(self._last_seq):
                hold = REPEAT_HOLD_S if self._repeating else HOLD_FRAMES * self._interval
                await wait_event(self._new, hold)  # not asyncio.wait_for: it can swallow aiortc's stop
        frame = self.ring.take(self._last_seq)
        self._repeating = frame is None
        if frame is None:
            self.repeated += 1
            self._metrics.frames_repeated.inc()
            out = self._last
        else:
            with frame:
                out = av.VideoFrame.from_ndarray(frame.pixels, format="rgb24")
                self._last_seq = frame.seq
            self._metrics.observe_stage(Stage.SERVER, (self._clock.now_ns() - frame.pts) / 1e9)
            self._last = out
        now = self._clock.now_ns()
        frame_out = out  # a repeat re-sends the same frame object: the encoder is done with it by now
        frame_out.pts = int((now - self._start_ns) * VIDEO_CLOCK_RATE / 1e9)
        frame_out.time_base = VIDEO_TIME_BASE
        self._last_sent_ns = now
        self.sent += 1
        self._metrics.frames_out.inc()
        return frame_out


async def pump_video(track: MediaStreamTrack, ring: FrameSink, clock: Clock, metrics: ServerMetrics,
                     executor: Executor, on_frame: Callable[[], None] | None = None, max_side: int = 0) -> None:
    """Receive frames until the track ends, decode each to RGB off the loop (scaled down to fit
    ``max_side`` when larger: the tracker works at that size anyway) and publish it to ``ring``. The frame's
    ``pts`` in the ring is its arrival time on the server clock."""
    seq = 0
    loop = asyncio.get_running_loop()
    while True:
        try:
            frame = cast(av.VideoFrame, await track.recv())
        except MediaStreamError:
            return
        arrived = clock.now_ns()
        pixels = await loop.run_in_executor(executor, _to_rgb, frame, max_side)
        decoded = clock.now_ns()
        metrics.frames_in.inc()
        if ring.write(pixels, arrived, seq, (("received", arrived), ("decoded", decoded))):
            metrics.frames_dropped.labels("input_ring").inc()
        seq += 1
        if on_frame is not None:
            on_frame()


def _to_rgb(frame: av.VideoFrame, max_side: int = 0) -> np.ndarray:
    side = max(frame.width, frame.height)
    if max_side and side > max_side:
        k = max_side / side
        return frame.reformat(width=max(2, round(frame.width * k)), height=max(2, round(frame.height * k)),
                              format="rgb24").to_ndarray()
    return frame.to_ndarray(format="rgb24")


AUDIO_RATE = 48_000
AUDIO_FRAME_S = 0.02  # 20 ms per packet, what Opus expects
AUDIO_TIME_BASE = fractions.Fraction(1, AUDIO_RATE)


class PlayoutAudioTrack(MediaStreamTrack):
    """The talking head's voice: 20 ms frames from an :class:`AudioPlayout`, paced by the clock. ``pts``
    counts samples, and skips the time of a stall, so the stream's timeline is real time, as the video's is."""

    kind = "audio"

    def __init__(self, playout: AudioPlayout, clock: Clock) -> None:
        super().__init__()
        self._playout = playout
        self._clock = clock
        self._samples = int(AUDIO_RATE * AUDIO_FRAME_S)
        self._start_ns: int | None = None
        self._sent = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = self._clock.now_ns()
        if self._start_ns is None:
            self._start_ns = now
        due = self._start_ns + int(self._sent * AUDIO_FRAME_S * 1e9)
        if due > now:
            await asyncio.sleep((due - now) / 1e9)
        elif now - due > 5 * AUDIO_FRAME_S * 1e9:
            # The loop stalled: leave a gap in the timeline for the time that passed (the receiver conceals
            # it) instead of bursting, or falling behind real time and so behind the video by every stall;
            # the audio that should have played meanwhile is dropped too, or the buffer would keep the delay.
            missed = int((now - due) // int(AUDIO_FRAME_S * 1e9))
            self._sent += missed
            self._playout.skip(missed * self._samples)
        samples = self._playout.pull(self._samples)
        pcm = np.clip(samples * 32767.0, -32768, 32767).astype(np.int16)[None, :]
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._sent * self._samples
        frame.time_base = AUDIO_TIME_BASE
        self._sent += 1
        return frame
