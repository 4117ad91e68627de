"""A Python client of the audio WebSocket (``websockets``): stream speech, collect the server's events and,
in frames mode, the talking-head frames. For TTS pipelines, tests and the benchmarks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from livepuppet.engine.clock import Clock, MonotonicClock
from livepuppet.streaming.protocol import (
    ClientMessage,
    End,
    FrameHeader,
    Interrupt,
    ServerEvent,
    Start,
    encode_client_message,
    parse_event,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class TalkFrame:
    seq: int
    epoch: int
    t: float  # the frame's start on the speech timeline (s)
    jpeg: bytes
    arrived_ns: int


@dataclass
class TalkTranscript:
    """Everything the server sent, typed, with arrival times (ns on the client's clock)."""

    events: list[tuple[int, ServerEvent]] = field(default_factory=list)
    frames: list[TalkFrame] = field(default_factory=list)

    def of_type(self, kind: type[E]) -> list[E]:
        return [e for _, e in self.events if isinstance(e, kind)]


class TalkClient:
    """One connection to ``ws://host:port/talk``; ``session`` attaches to a WebRTC talk session."""

    def __init__(self, url: str, clock: Clock | None = None, ping_timeout: float | None = 20.0) -> None:
        self.url = url
        self._ping_timeout = ping_timeout  # the client's own keepalive (websockets' default: 20 s)
        self._clock = clock or MonotonicClock()
        self.transcript = TalkTranscript()
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._new_event = asyncio.Event()

    async def __aenter__(self) -> TalkClient:
        self._ws = await connect(self.url, max_size=None, compression=None, ping_timeout=self._ping_timeout)
        self._reader = asyncio.ensure_future(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for message in self._ws:
                now = self._clock.now_ns()
                if isinstance(message, bytes):
                    header, jpeg = FrameHeader.unpack(message)
                    self.transcript.frames.append(TalkFrame(header.seq, header.epoch, header.t, jpeg, now))
                else:
                    self.transcript.events.append((now, parse_event(message)))
                self._new_event.set()
        except ConnectionClosed:  # the connection ended abnormally; closed_code tells how
            self._new_event.set()

    async def send(self, message: ClientMessage) -> None:
        """One control message (:class:`Start`, :class:`End`, :class:`Interrupt`, :class:`SetEmotion`)."""
        await self.send_raw(encode_client_message(message))

    async def send_raw(self, data: bytes | str) -> None:
        assert self._ws is not None
        await self._ws.send(data)

    async def start(self, sample_rate: int, frames: str = "live") -> None:
        await self.send(Start(sample_rate=sample_rate, frames=frames))

    async def end(self) -> None:
        await self.send(End())

    async def interrupt(self) -> None:
        await self.send(Interrupt())

    async def send_audio(self, pcm: np.ndarray, sample_rate: int, chunk_s: float = 0.02,
                         realtime: bool = False) -> list[int]:
        """Send ``(n,) f32`` audio as PCM16 chunks; ``realtime`` paces them like a microphone. Returns the
        send time (ns) of each chunk."""
        data = (np.clip(pcm, -1, 1) * 32767).astype("<i2")
        step = max(1, int(sample_rate * chunk_s))
        times: list[int] = []
        start = self._clock.now_ns()
        for k, i in enumerate(range(0, len(data), step)):
            if realtime:
                due = start + int(k * chunk_s * 1e9)
                delay = (due - self._clock.now_ns()) / 1e9
                if delay > 0:
                    await asyncio.sleep(delay)
            times.append(self._clock.now_ns())
            await self.send_raw(data[i:i + step].tobytes())
        return times

    async def ping(self, timeout: float = 10.0) -> float:
        """One WebSocket ping; the round trip in seconds (a server that stopped reading never answers)."""
        assert self._ws is not None
        pong = await self._ws.ping()
        return float(await asyncio.wait_for(pong, timeout))

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        """Wait until ``predicate(transcript)`` is true."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate(self.transcript):
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError("the server did not answer in time")
            self._new_event.clear()
            try:
                await asyncio.wait_for(self._new_event.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    @property
    def closed_code(self) -> int | None:
        return None if self._ws is None else self._ws.close_code
