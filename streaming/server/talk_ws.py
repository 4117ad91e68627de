"""The audio WebSocket (``websockets``): speech in, talking head out. Protocol: docs/protocol.md.

Two outputs: attach to a WebRTC talk session (``/talk?session=ID``; video and the same audio go back
over WebRTC, in sync), or frames mode (``/talk``, no session; JPEG frames stamped with their speech time
come back over this socket). Every protocol mistake is answered with an ``error`` event and the socket
stays usable; only a message over the size limit closes it (code 1009).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import struct
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import numpy as np
from livepuppet.engine.config import EMOTIONS, EngineConfig
from livepuppet.engine.speech.mouth_model import SAMPLE_RATE, VISEMES, MouthFrame
from livepuppet.engine.speech.resampler import StreamingResampler
from livepuppet.engine.speech.talking_head import TalkingHead
from livepuppet.errors import InputError, LivepuppetError
from livepuppet.streaming.server.audio_playout import BufferFull
from livepuppet.streaming.server.metrics import ServerMetrics
from livepuppet.streaming.server.portraits import PortraitStore
from livepuppet.streaming.server.session import SessionLimit, SessionManager
from livepuppet.streaming.server.talk_job import FramesTalkJob, TalkJob
from livepuppet.streaming.server.tracks import AUDIO_RATE
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

log = logging.getLogger(__name__)

SAMPLE_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
MAX_MESSAGE_BYTES = 1 << 20  # one binary message: ≈ 10 s of 48 kHz PCM16; larger closes the socket (1009)
FRAME_MAGIC = b"LPF1"
FRAME_HEADER = struct.Struct("<4sIIQ")  # magic, seq, epoch, speech time in µs; the JPEG follows


def frame_message(seq: int, epoch: int, t: float, jpeg: bytes) -> bytes:
    return FRAME_HEADER.pack(FRAME_MAGIC, seq, epoch, int(round(t * 1e6))) + jpeg


def parse_frame_message(data: bytes) -> tuple[int, int, float, bytes]:
    """(seq, epoch, speech time s, JPEG) of a frames-mode binary message."""
    magic, seq, epoch, t_us = FRAME_HEADER.unpack_from(data)
    if magic != FRAME_MAGIC:
        raise ValueError("not a livepuppet frame message")
    return seq, epoch, t_us / 1e6, data[FRAME_HEADER.size:]


class ProtocolError(InputError):
    """A client broke the protocol; ``code`` is sent in the error event."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class TalkState:
    """One WebSocket connection's audio state."""

    head: TalkingHead
    job: TalkJob | FramesTalkJob
    rate: int = 0
    to_model: StreamingResampler | None = None
    to_playout: StreamingResampler | None = None
    session_id: str = ""  # the WebRTC session fed (empty in frames mode)
    chunks: int = 0
    speaking: bool = False
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)


def _mouth_event(frames: list[MouthFrame]) -> str:
    return json.dumps({"type": "mouth", "frames": [
        {"t": round(f.t, 3), "viseme": VISEMES[f.viseme], "jaw": round(f.jaw_open, 3), "close": round(f.lip_close, 3),
         "width": round(f.lip_width, 3), "round": round(f.lip_round, 3)} for f in frames]})


class TalkServer:
    """The WebSocket endpoint, sharing the HTTP server's sessions, portraits, metrics and limits."""

    def __init__(self, config: EngineConfig, sessions: SessionManager, portraits: PortraitStore,
                 metrics: ServerMetrics) -> None:
        self._config = config
        self._sessions = sessions
        self._portraits = portraits
        self._metrics = metrics
        self._ingest = ThreadPoolExecutor(max_workers=2, thread_name_prefix="livepuppet-audio")
        self._server: Server | None = None
        self._attached: set[str] = set()

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the port (useful with port 0)."""
        self._server = await serve(self._handle, host, port, process_request=self._check_request,
                                   max_size=MAX_MESSAGE_BYTES, compression=None)
        return int(next(iter(self._server.sockets)).getsockname()[1])

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self._ingest.shutdown(wait=True)

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Path, token (``?token=`` from browsers, or the Authorization header) and origin."""
        url = urllib.parse.urlsplit(request.path)
        if url.path != "/talk":
            return connection.respond(HTTPStatus.NOT_FOUND, "the talk endpoint is /talk\n")
        server = self._config.server
        origin = request.headers.get("Origin")
        if origin and not self._origin_ok(origin, request.headers):
            return connection.respond(HTTPStatus.FORBIDDEN, f"origin {origin} is not allowed\n")
        if server.token:
            query = urllib.parse.parse_qs(url.query)
            sent = query.get("token", [""])[0]
            header = request.headers.get("Authorization", "")
            ok = hmac.compare_digest(sent.encode(), server.token.encode()) or hmac.compare_digest(
                header.encode(), f"Bearer {server.token}".encode())
            if not ok:
                return connection.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong token\n")
        return None

    def _origin_ok(self, origin: str, headers: Headers) -> bool:
        server = self._config.server
        host = urllib.parse.urlsplit(origin).hostname or ""
        own = {server.host, "localhost", "127.0.0.1", "::1"} if server.host in ("127.0.0.1", "localhost") \
            else {server.host}
        return origin in server.allowed_origins or host in own or host == (headers.get("Host") or "").split(":")[0]

    async def _handle(self, connection: ServerConnection) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(connection.request.path).query)  # type: ignore[union-attr]
        send = _Sender(connection)
        try:
            state = await self._open(query, connection, send)
        except LivepuppetError as exc:
            code = "busy" if isinstance(exc, SessionLimit) else getattr(exc, "code", "bad_request")
            await send.json({"type": "error", "code": code, "message": str(exc)})
            await connection.close(4400 if code != "busy" else 4503, code)
            return
        try:
            await send.json({"type": "ready", "output": "webrtc" if isinstance(state.job, TalkJob) else "frames",
                             "fps": self._fps(state), "sample_rates": list(SAMPLE_RATES),
                             "lookahead_ms": round(state.head.lookahead_s * 1000)})
            async for message in connection:
                try:
                    if isinstance(message, bytes):
                        await self._audio(state, message, send)
                    else:
                        await self._control(state, message, send)
                except ProtocolError as exc:
                    await send.json({"type": "error", "code": exc.code, "message": str(exc)})
        except ConnectionClosed:
            pass
        finally:
            await self._close(state)

    def _fps(self, state: TalkState) -> float:
        return self._config.server.fps if isinstance(state.job, TalkJob) else self._config.speech.fps

    async def _open(self, query: dict[str, list[str]], connection: ServerConnection, send: _Sender) -> TalkState:
        session_id = query.get("session", [""])[0]
        if session_id:
            session = self._sessions.get(session_id)
            if not isinstance(session.job, TalkJob):
                raise ProtocolError("bad_session", f"session {session_id[:6]}… is a {session.kind} session, not talk")
            if session_id in self._attached:
                raise ProtocolError("bad_session", "another WebSocket already feeds this session")
            self._attached.add(session_id)
            state = TalkState(head=session.job.head, job=session.job, session_id=session_id)
            state.tasks.add(asyncio.ensure_future(self._watch_speaking(state, send)))
            return state
        portrait_id = query.get("portrait", [""])[0]
        portrait = self._portraits.get(portrait_id) if portrait_id else self._portraits.default
        loop = asyncio.get_running_loop()
        job = await self._sessions.open_frames_session(
            portrait, lambda seq, t, epoch, jpeg: loop.call_soon_threadsafe(send.frame, seq, t, epoch, jpeg))
        send.on_frame_sent = job.sent
        return TalkState(head=job.head, job=job)

    async def _close(self, state: TalkState) -> None:
        for task in state.tasks:
            task.cancel()
        await asyncio.gather(*state.tasks, return_exceptions=True)
        if isinstance(state.job, TalkJob):
            state.job.playout.end()
            self._attached.discard(state.session_id)
        else:
            await self._sessions.close_frames_session(state.job)

    async def _audio(self, state: TalkState, data: bytes, send: _Sender) -> None:
        if not state.rate:
            raise ProtocolError("not_started", 'send {"type": "start", "sample_rate": 16000} before audio')
        if len(data) % 2:
            raise ProtocolError("bad_audio", "audio must be 16-bit little-endian PCM: an even number of bytes")
        self._metrics.audio_chunks.inc()
        state.chunks += 1
        pcm = np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
        loop = asyncio.get_running_loop()
        try:
            frames = await loop.run_in_executor(self._ingest, self._ingest_audio, state, pcm)
        except BufferFull as exc:
            raise ProtocolError("buffer_full", f"{exc}; wait for playback before sending more") from exc
        if frames:
            if isinstance(state.job, FramesTalkJob) and not state.speaking:
                state.speaking = True
                await send.json({"type": "speaking", "state": True, "t": round(frames[0].t, 3)})
            await send.text(_mouth_event(frames))
        self._sessions.worker.notify()

    def _ingest_audio(self, state: TalkState, pcm: np.ndarray) -> list[MouthFrame]:
        assert state.to_model is not None
        if isinstance(state.job, TalkJob):
            assert state.to_playout is not None
            state.job.playout.push(state.to_playout.push(pcm))
        return state.head.push(state.to_model.push(pcm))

    async def _control(self, state: TalkState, text: str, send: _Sender) -> None:
        try:
            message = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProtocolError("bad_json", f"control messages must be JSON: {exc}") from exc
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise ProtocolError("bad_message", 'control messages are objects with a "type"')
        kind = message["type"]
        loop = asyncio.get_running_loop()
        if kind == "start":
            rate = message.get("sample_rate")
            if rate not in SAMPLE_RATES:
                raise ProtocolError("bad_sample_rate", f"sample_rate must be one of {list(SAMPLE_RATES)}, not {rate!r}")
            if message.get("format", "pcm16") != "pcm16":
                raise ProtocolError("bad_format", 'only "pcm16" (16-bit little-endian mono) audio is supported')
            state.rate = int(rate)
            state.to_model = StreamingResampler(state.rate, SAMPLE_RATE)
            state.to_playout = StreamingResampler(state.rate, AUDIO_RATE)
            await send.json({"type": "started", "sample_rate": state.rate})
        elif kind == "end":
            frames = await loop.run_in_executor(self._ingest, state.head.end_utterance)
            if isinstance(state.job, TalkJob):
                state.job.playout.end()
            else:
                state.job.mark_end()
            if frames:
                await send.text(_mouth_event(frames))
            self._sessions.worker.notify()
        elif kind == "interrupt":
            await loop.run_in_executor(self._ingest, self._interrupt, state)
            state.speaking = False
            await send.json({"type": "interrupted"})
            self._sessions.worker.notify()
        elif kind == "set":
            emotion = message.get("emotion", "neutral")
            intensity = message.get("intensity", self._config.speech.emotion_intensity)
            if emotion not in EMOTIONS:
                raise ProtocolError("bad_emotion", f"emotion must be one of {', '.join(EMOTIONS)}")
            if isinstance(intensity, bool) or not isinstance(intensity, (int, float)) or not 0 <= intensity <= 1:
                raise ProtocolError("bad_intensity", "intensity must be a number in [0, 1]")
            state.head.set_emotion(emotion, float(intensity))
        else:
            raise ProtocolError("unknown_type", f"unknown message type {kind!r}; use start, end, interrupt or set")

    def _interrupt(self, state: TalkState) -> None:
        if isinstance(state.job, TalkJob):
            state.job.mark_interrupt()
            state.job.playout.clear()
        else:
            state.job.interrupt()
        state.head.interrupt()
        for resampler in (state.to_model, state.to_playout):
            if resampler is not None:
                resampler.reset()

    async def _watch_speaking(self, state: TalkState, send: _Sender) -> None:
        """WebRTC mode: tell the client when playback of speech starts and stops."""
        assert isinstance(state.job, TalkJob)
        while True:
            speaking = state.job.playout.speaking
            if speaking != state.speaking:
                state.speaking = speaking
                await send.json({"type": "speaking", "state": speaking, "t": round(state.job.playout.cursor_s, 3)})
            await asyncio.sleep(0.02)


class _Sender:
    """Serializes sends on one connection; frames from the engine thread arrive via the loop."""

    def __init__(self, connection: ServerConnection) -> None:
        self._connection = connection
        self._lock = asyncio.Lock()
        self.on_frame_sent: Callable[[], None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    async def json(self, message: dict[str, Any]) -> None:
        await self.text(json.dumps(message))

    async def text(self, text: str | bytes) -> None:
        async with self._lock:
            await self._connection.send(text)

    def frame(self, seq: int, t: float, epoch: int, jpeg: bytes) -> None:
        task = asyncio.ensure_future(self._send_frame(frame_message(seq, epoch, t, jpeg)))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send_frame(self, data: bytes) -> None:
        try:
            await self.text(data)
        except ConnectionClosed:
            pass
        finally:
            if self.on_frame_sent is not None:
                self.on_frame_sent()

