"""How the audio WebSocket feeds a talking-head session, wherever its generator runs: in this process
(:class:`LocalSpeech`) or in an engine worker process (``worker_pool.RemoteSpeech``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Protocol

import numpy as np
from livepuppet.engine.speech.generator import SEGMENT_END, AudioChunk, TalkingHeadGenerator
from livepuppet.engine.speech.mouth_model import MouthFrame


class SpeechInput(Protocol):
    """Speech in for one session. ``push``/``end`` return the new mouth frames and raise
    :class:`~livepuppet.engine.speech.generator.BufferFull` when too much is queued ahead of playback."""

    fps: float
    lookahead_s: float

    async def push(self, pcm: np.ndarray, sample_rate: int) -> list[MouthFrame]: ...

    async def end(self) -> list[MouthFrame]: ...

    async def interrupt(self) -> None: ...

    def set_emotion(self, name: str, intensity: float) -> None: ...


class LocalSpeech:
    """A generator in this process; the audio model runs on ``executor`` (never on the event loop)."""

    def __init__(self, generator: TalkingHeadGenerator, executor: Executor,
                 on_interrupt: Callable[[], None] | None = None) -> None:
        self._generator = generator
        self._executor = executor
        self._on_interrupt = on_interrupt
        self.fps = generator.fps
        self.lookahead_s = generator.lookahead_s

    async def push(self, pcm: np.ndarray, sample_rate: int) -> list[MouthFrame]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._generator.push_audio, AudioChunk(pcm, sample_rate))

    async def end(self) -> list[MouthFrame]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._generator.push_audio, SEGMENT_END)

    async def interrupt(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._clear)

    def _clear(self) -> None:
        self._generator.clear_buffer()
        if self._on_interrupt is not None:
            self._on_interrupt()

    def set_emotion(self, name: str, intensity: float) -> None:
        self._generator.set_emotion(name, intensity)
