"""How the audio WebSocket feeds a talking-head session, wherever its generator runs: in this process
(:class:`LocalSpeech`) or in an engine worker process (``worker_pool.RemoteSpeech``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any, Protocol, TypeVar

import numpy as np
from livepuppet.engine.speech.generator import SEGMENT_END, AudioChunk, TalkingHeadGenerator
from livepuppet.engine.speech.mouth_model import MouthFrame

T = TypeVar("T")


class SpeechInput(Protocol):
    """Speech in for one session. Each call is *issued* when made, in call order, and returns an awaitable
    of its result, so a caller can take in the next chunk before the model has answered the last (a worker
    process answers a round trip later). ``push``/``end`` give the new mouth frames, or raise
    :class:`~livepuppet.engine.speech.generator.BufferFull` when too much is queued ahead of playback."""

    fps: float
    lookahead_s: float

    def push(self, pcm: np.ndarray, sample_rate: int) -> Awaitable[list[MouthFrame]]: ...

    def end(self) -> Awaitable[list[MouthFrame]]: ...

    def interrupt(self) -> Awaitable[None]: ...

    def set_emotion(self, name: str, intensity: float) -> None: ...


class LocalSpeech:
    """A generator in this process; the audio model runs on ``executor`` (never on the event loop), one call
    at a time in call order (the executor has several threads, shared by every session). ``wake`` tells the
    engine thread once a call has queued speech (or cleared it)."""

    def __init__(self, generator: TalkingHeadGenerator, executor: Executor, wake: Callable[[], None],
                 on_interrupt: Callable[[], None] | None = None) -> None:
        self._generator = generator
        self._executor = executor
        self._wake = wake
        self._on_interrupt = on_interrupt
        self._tail: asyncio.Future[Any] | None = None  # the call issued last
        self.fps = generator.fps
        self.lookahead_s = generator.lookahead_s

    def push(self, pcm: np.ndarray, sample_rate: int) -> Awaitable[list[MouthFrame]]:
        arrived = self._generator.now_ns()  # when it came, not when the executor gets to it
        return self._after_previous(self._generator.push_audio, AudioChunk(pcm, sample_rate, arrived))

    def end(self) -> Awaitable[list[MouthFrame]]:
        return self._after_previous(self._generator.push_audio, SEGMENT_END)

    def interrupt(self) -> Awaitable[None]:
        return self._after_previous(self._clear)

    def _after_previous(self, fn: Callable[..., T], *args: object) -> asyncio.Future[T]:
        previous = self._tail
        loop = asyncio.get_running_loop()

        async def run() -> T:
            if previous is not None and not previous.done():
                await asyncio.wait({previous})  # its order, not its outcome, matters here
            result = await loop.run_in_executor(self._executor, fn, *args)
            self._wake()
            return result

        task = self._tail = asyncio.ensure_future(run())
        return task

    def _clear(self) -> None:
        self._generator.clear_buffer()
        if self._on_interrupt is not None:
            self._on_interrupt()

    def set_emotion(self, name: str, intensity: float) -> None:
        self._generator.set_emotion(name, intensity)
