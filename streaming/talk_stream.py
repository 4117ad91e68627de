"""The asyncio face of the talking-head generator: ``await push_audio(chunk | SEGMENT_END)``,
``clear_buffer()``, and ``async for item in stream`` yielding video frames, audio frames and segment ends on
one timeline. Rendering runs in an executor (never on the event loop); a :class:`Pacer` decides when each
frame is due, so tests run on virtual time and real consumers on the clock.

Two modes: ``realtime=True`` yields one frame every 1/fps (idle life between utterances, for consumers that
play what they get: Pipecat, LiveKit's AVSynchronizer, WebRTC tracks); ``realtime=False`` yields speech
frames as soon as their audio is there (faster than real time when the TTS is), nothing while idle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Protocol

from livepuppet.engine.clock import Clock, ManualClock, MonotonicClock
from livepuppet.engine.speech.generator import (
    AudioChunk,
    BufferFull,
    EndOfSegment,
    TalkingHeadGenerator,
    TalkItem,
    TalkStep,
)
from livepuppet.streaming.event_wait import wait_event

log = logging.getLogger(__name__)

MAX_LATE_FRAMES = 5  # a real-time stream this far behind skips ahead instead of bursting


class Pacer(Protocol):
    """When frames are due: the clock and a way to wait for an instant on it."""

    def now_ns(self) -> int: ...

    async def sleep_until(self, ns: int, wake: asyncio.Event | None = None) -> None:
        """Return at ``ns`` on the clock, or earlier once ``wake`` is set (an interrupt)."""
        ...


class RealtimePacer:
    """Frames due on a real clock (monotonic by default)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or MonotonicClock()

    def now_ns(self) -> int:
        return self._clock.now_ns()

    async def sleep_until(self, ns: int, wake: asyncio.Event | None = None) -> None:
        delay = max(0.0, (ns - self._clock.now_ns()) / 1e9)
        if wake is None:
            await asyncio.sleep(delay)
            return
        await wait_event(wake, delay)  # not asyncio.wait_for, which can swallow the consumer's cancellation


class VirtualPacer:
    """Virtual time for tests: waiting jumps a :class:`ManualClock` to the instant (and yields to the loop)."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock

    def now_ns(self) -> int:
        return self.clock.now_ns()

    async def sleep_until(self, ns: int, wake: asyncio.Event | None = None) -> None:
        """Jumps to ``ns`` (``wake`` cannot cut short a wait that takes no time)."""
        now = self.clock.now_ns()
        if ns > now:
            self.clock.advance((ns - now) / 1e9)
        await asyncio.sleep(0)


class TalkStream:
    """Owns its rendering thread (unless given an executor); :meth:`aclose` stops the iterator and frees it."""

    def __init__(self, generator: TalkingHeadGenerator, *, realtime: bool = True, pacer: Pacer | None = None,
                 executor: Executor | None = None) -> None:
        self.generator = generator
        self.realtime = realtime
        self._pacer = pacer or RealtimePacer()
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="livepuppet-talk")
        self._ingest = ThreadPoolExecutor(max_workers=1, thread_name_prefix="livepuppet-talk-in") \
            if self._own_executor else self._executor
        self._input = asyncio.Event()  # audio pushed or buffer cleared: the frames-as-ready iterator wakes
        self._room = asyncio.Event()  # frames consumed or buffer cleared: a waiting push retries
        self._cleared = asyncio.Event()  # buffer cleared: a real-time stream renders its idle frame at once
        self._closed = False

    @property
    def fps(self) -> float:
        return self.generator.fps

    async def push_audio(self, item: AudioChunk | EndOfSegment) -> None:
        """Queue audio (the audio model runs off the loop). When the buffer is full, wait for playback to
        make room instead of failing: a TTS may be far faster than real time."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(self._ingest, self.generator.push_audio, item)
                break
            except BufferFull:
                if self._closed:
                    raise
                self._room.clear()
                await self._room.wait()
        self._input.set()

    def clear_buffer(self) -> None:
        """Interrupt: queued speech is dropped now; the next frame is idle and, in real time, rendered at once
        instead of at its due time (barge-in feedback within one render, not one frame interval plus one)."""
        self.generator.clear_buffer()
        self._input.set()
        self._room.set()
        self._cleared.set()

    def set_emotion(self, name: str, intensity: float) -> None:
        self.generator.set_emotion(name, intensity)

    async def _step(self, idle: bool) -> TalkStep | None:
        loop = asyncio.get_running_loop()
        step = await loop.run_in_executor(self._executor, self.generator.next_step, idle)
        if step is not None and step.audio is not None:
            self._room.set()
        return step

    def __aiter__(self) -> AsyncIterator[TalkItem]:
        return self._realtime() if self.realtime else self._as_ready()

    async def _realtime(self) -> AsyncIterator[TalkItem]:
        interval = int(1e9 / self.fps)
        start = self._pacer.now_ns()
        k = 0
        while not self._closed:
            due = start + k * interval
            now = self._pacer.now_ns()
            if now > due + MAX_LATE_FRAMES * interval:  # the consumer or the machine stalled: skip ahead
                start, due = now - k * interval, now
            await self._pacer.sleep_until(due, self._cleared)
            if self._cleared.is_set():
                self._cleared.clear()
                now = self._pacer.now_ns()
                if now < due:  # interrupted while waiting: the idle frame is due now, the cadence restarts
                    start, k = now, 0
            step = await self._step(True)
            k += 1
            if step is None or self._closed:  # pragma: no cover - next_step(idle=True) always renders
                continue
            for item in step.items():
                yield item

    async def _as_ready(self) -> AsyncIterator[TalkItem]:
        while not self._closed:
            self._input.clear()
            for end in self.generator.pop_ends():
                yield end
            step = await self._step(False)
            if step is None:
                if not self.generator.ready():
                    await self._input.wait()
                continue
            for item in step.items():
                yield item

    async def aclose(self) -> None:
        """Stop iterating (the iterator ends after its current item) and free the owned threads."""
        self._closed = True
        self._input.set()
        self._room.set()
        self._cleared.set()
        if self._own_executor:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self._executor.shutdown, True)
            await loop.run_in_executor(None, self._ingest.shutdown, True)

    async def __aenter__(self) -> TalkStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
