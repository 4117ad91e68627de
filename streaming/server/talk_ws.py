"""The audio WebSocket (``websockets``): speech in, talking head out. Protocol: docs/protocol.md, wire
records in :mod:`livepuppet.streaming.protocol`.

Two outputs: attach to a WebRTC talk session (``/talk?session=ID``; video and the same audio go back over
WebRTC, in sync), or frames mode (``/talk``, no session; a frames session is opened and JPEG frames
stamped with their speech time come back over this socket). Both feed the session's talking-head
generator. Every protocol mistake is answered with an ``error`` event and the socket stays usable; only
a message over the size limit closes it (code 1009). When the session ends, the socket gets ``ended``
and is closed.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import numpy as np
from livepuppet.engine.clock import Clock
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.speech.generator import BufferFull
from livepuppet.engine.speech.mouth_model import MouthFrame
from livepuppet.engine.speech.visemes import VISEMES
from livepuppet.errors import LivepuppetError
from livepuppet.streaming.protocol import (
    CLOSE_BUSY,
    CLOSE_ENDED,
    CLOSE_REFUSED,
    MAX_MESSAGE_BYTES,
    End,
    Ended,
    Error,
    FrameHeader,
    Interrupt,
    Interrupted,
    Mouth,
    MouthShape,
    ProtocolError,
    Ready,
    ServerEvent,
    SetEmotion,
    Start,
    Started,
    encode_event,
    parse_client_message,
    pcm16_audio,
)
from livepuppet.streaming.server.metrics import ServerMetrics
from livepuppet.streaming.server.portraits import PortraitStore, UnknownPortrait
from livepuppet.streaming.server.rate_limit import ClientRateLimit, RateLimited
from livepuppet.streaming.server.session import Session
from livepuppet.streaming.server.session_manager import SessionLimit, SessionManager, UnknownSession
from livepuppet.streaming.server.speech_input import SpeechInput
from livepuppet.streaming.server.talk_job import FramesJob, TalkJob
from livepuppet.streaming.server.worker_pool import RemoteJob
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

log = logging.getLogger(__name__)

# Messages taken in but not yet answered, per socket: 20 s of 20 ms chunks. Past it the reader waits (TCP
# pushes back on the client). The model answers a chunk in about a millisecond, so a TTS sending faster than
# real time gets here only when the engine has stalled.
MAX_PENDING = 1000


@dataclass
class TalkState:
    """One WebSocket connection: the session it feeds and the audio format it declared."""

    session: Session
    speech: SpeechInput
    attached: bool  # fed a WebRTC talk session (else: its own frames session)
    rate: int = 0
    forget: Callable[[], None] = lambda: None  # drops the session's end listener


def _mouth_event(frames: list[MouthFrame]) -> Mouth:
    return Mouth(frames=tuple(MouthShape(t=round(f.t, 3), viseme=VISEMES[f.viseme], jaw=round(f.jaw_open, 3),
                                         close=round(f.lip_close, 3), width=round(f.lip_width, 3),
                                         round=round(f.lip_round, 3)) for f in frames))


class TalkServer:
    """The WebSocket endpoint, sharing the HTTP server's sessions, portraits, metrics and limits."""

    def __init__(self, config: EngineConfig, clock: Clock, sessions: SessionManager, portraits: PortraitStore,
                 metrics: ServerMetrics, session_limit: ClientRateLimit | None = None) -> None:
        self._config = config
        self._session_limit = session_limit
        self._clock = clock
        self._sessions = sessions
        self._portraits = portraits
        self._metrics = metrics
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
            busy = isinstance(exc, (SessionLimit, RateLimited))
            code = "busy" if busy else "bad_session" if isinstance(exc, UnknownSession) else \
                "bad_portrait" if isinstance(exc, UnknownPortrait) else getattr(exc, "code", "bad_request")
            await send.event(Error(code=code, message=str(exc)))
            await connection.close(CLOSE_BUSY if busy else CLOSE_REFUSED, code)
            return
        # Messages are taken in as they come and answered in order by a task of their own: the reader never
        # waits for the audio model (a worker process answers a round trip later), so it keeps reading, and
        # the socket's keepalive pongs keep being read, however the engine is loaded.
        answers: asyncio.Queue[asyncio.Future[list[ServerEvent]]] = asyncio.Queue(MAX_PENDING)
        answering = asyncio.ensure_future(self._answer(answers, send))
        try:
            await send.event(Ready(output="webrtc" if state.attached else "frames", fps=state.speech.fps,
                                   session=state.session.id, lookahead_ms=round(state.speech.lookahead_s * 1000)))
            async for message in connection:
                self._sessions.touch(state.session)
                await answers.put(self._take(state, message))
                if answering.done():
                    break  # the socket went while an answer was sent
        except ConnectionClosed:
            pass
        finally:
            answering.cancel()
            while not answers.empty():
                answers.get_nowait().cancel()
            await asyncio.gather(answering, return_exceptions=True)
            await self._close(state)

    async def _answer(self, answers: asyncio.Queue[asyncio.Future[list[ServerEvent]]], send: _Sender) -> None:
        """Send each message's events in message order, as each is ready."""
        while True:
            pending = await answers.get()
            try:
                events = await pending
            except LivepuppetError as exc:  # the model refused it (e.g. a bad audio chunk); the socket stays usable
                events = [Error(code=getattr(exc, "code", "bad_audio"), message=str(exc))]
            for event in events:
                await send.event(event)

    def _take(self, state: TalkState, message: str | bytes) -> asyncio.Future[list[ServerEvent]]:
        """Check ``message`` and issue what it asks for; the future gives the events that answer it."""
        try:
            if isinstance(message, bytes):
                return self._audio(state, message)
            return self._control(state, parse_client_message(message))
        except LivepuppetError as exc:
            return _answered(Error(code=getattr(exc, "code", "bad_request"), message=str(exc)))

    async def _open(self, query: dict[str, list[str]], connection: ServerConnection, send: _Sender) -> TalkState:
        loop = asyncio.get_running_loop()
        session_id = query.get("session", [""])[0]
        if session_id:
            session = self._sessions.get(session_id)
            job = session.job
            if session.speech is None or not isinstance(job, (TalkJob, RemoteJob)) or session.kind != "talk":
                raise ProtocolError("bad_session", f"session {session_id[:6]}… is a {session.kind} session, not talk")
            if session_id in self._attached:
                raise ProtocolError("bad_session", "another WebSocket already feeds this session")
            self._attached.add(session_id)
            job.on_event = send.event_soon
            state = TalkState(session=session, speech=session.speech, attached=True)
        else:
            portrait_id = query.get("portrait", [""])[0]
            portrait = self._portraits.get(portrait_id) if portrait_id else self._portraits.default
            if self._session_limit is not None:
                remote = connection.remote_address
                self._session_limit.take(str(remote[0]) if remote else "unknown")
            frames = await self._sessions.open_frames(
                portrait, lambda header, jpeg: loop.call_soon_threadsafe(send.frame, header, jpeg),
                lambda event: loop.call_soon_threadsafe(send.event_soon, event))
            assert isinstance(frames.job, (FramesJob, RemoteJob)) and frames.speech is not None
            send.on_frame_sent = frames.job.sent
            state = TalkState(session=frames, speech=frames.speech, attached=False)

        async def ended(reason: str) -> None:
            try:
                await send.event(Ended(reason=reason))
                await connection.close(CLOSE_ENDED, f"session {reason}")
            except ConnectionClosed:
                pass  # the socket went first (the client left, or the server is shutting down)

        state.forget = state.session.on_end(ended)
        return state

    async def _close(self, state: TalkState) -> None:
        state.forget()
        if state.attached:
            job = state.session.job
            if isinstance(job, (TalkJob, RemoteJob)):
                job.on_event = None
            self._attached.discard(state.session.id)
        else:
            await self._sessions.close(state.session.id, "closed")

    def _audio(self, state: TalkState, data: bytes) -> asyncio.Future[list[ServerEvent]]:
        if not state.rate:
            raise ProtocolError("not_started", 'send {"type": "start", "sample_rate": 16000} before audio')
        pcm = np.frombuffer(pcm16_audio(data), "<i2")
        self._metrics.audio_chunks.inc()
        return asyncio.ensure_future(self._mouth(state.speech.push(pcm, state.rate)))

    async def _mouth(self, pending: Awaitable[list[MouthFrame]]) -> list[ServerEvent]:
        try:
            frames = await pending
        except BufferFull as exc:
            raise ProtocolError("buffer_full", str(exc)) from exc
        return [_mouth_event(frames)] if frames else []

    def _control(self, state: TalkState, message: Start | End | Interrupt | SetEmotion
                 ) -> asyncio.Future[list[ServerEvent]]:
        if isinstance(message, Start):
            if state.attached:
                if message.frames != "live":
                    raise ProtocolError("bad_frames", "frames applies to frames mode; a WebRTC talk session's "
                                        "video is always live")
            else:
                job = state.session.job
                assert isinstance(job, (FramesJob, RemoteJob))
                job.set_max_lag(0.0 if message.frames == "all" else self._config.speech.frames_max_lag_s)
            state.rate = message.sample_rate
            return _answered(Started(sample_rate=state.rate))
        if isinstance(message, End):
            if not state.rate:
                raise ProtocolError("not_started", 'nothing to end: send {"type": "start", …} and audio first')
            return asyncio.ensure_future(self._mouth(state.speech.end()))
        if isinstance(message, Interrupt):
            return asyncio.ensure_future(self._interrupted(state.speech.interrupt()))
        intensity = self._config.speech.emotion_intensity if message.intensity is None else message.intensity
        state.speech.set_emotion(message.emotion, intensity)
        return _answered()

    async def _interrupted(self, pending: Awaitable[None]) -> list[ServerEvent]:
        await pending
        return [Interrupted()]


def _answered(*events: ServerEvent) -> asyncio.Future[list[ServerEvent]]:
    """An answer known at once."""
    done: asyncio.Future[list[ServerEvent]] = asyncio.get_running_loop().create_future()
    done.set_result(list(events))
    return done


class _Sender:
    """Serializes sends on one connection; frames and events from other threads arrive via the loop."""

    def __init__(self, connection: ServerConnection) -> None:
        self._connection = connection
        self._lock = asyncio.Lock()
        self.on_frame_sent: Any = None
        self._pending: set[asyncio.Task[None]] = set()

    async def event(self, event: ServerEvent) -> None:
        await self._send(encode_event(event))

    async def _send(self, data: str | bytes) -> None:
        async with self._lock:
            await self._connection.send(data)

    def event_soon(self, event: ServerEvent) -> None:
        """Send ``event`` from the event loop without waiting (a lost connection is not an error here)."""
        self._spawn(self._send_quietly(encode_event(event)))

    def frame(self, header: FrameHeader, jpeg: bytes) -> None:
        self._spawn(self._send_frame(header.pack(jpeg)))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send_quietly(self, data: str | bytes) -> None:
        try:
            await self._send(data)
        except ConnectionClosed:
            pass

    async def _send_frame(self, data: bytes) -> None:
        try:
            await self._send_quietly(data)
        finally:
            if self.on_frame_sent is not None:
                self.on_frame_sent()
