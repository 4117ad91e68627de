"""Sessions: one client, one engine job, and everything built for them, released on every path.

A session owns an :class:`~contextlib.AsyncExitStack`: each resource is registered the moment it exists
(engine job, peer connection, tracks, worker slot, tasks), so a creation that fails half way and a normal
close run the same teardown, in reverse order. WebRTC sessions (puppet, echo, talk) carry a peer
connection and viewers; frames-mode sessions are fed and watched over the audio WebSocket alone.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from aiortc import RTCPeerConnection
from livepuppet.engine.clock import Clock
from livepuppet.streaming.server.engine_job import EngineJob
from livepuppet.streaming.server.portraits import Portrait
from livepuppet.streaming.server.speech_input import SpeechInput
from livepuppet.streaming.server.tracks import RingVideoTrack

log = logging.getLogger(__name__)

EndListener = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What a session reports to its client (``GET /api/sessions/{id}``)."""

    id: str
    kind: str
    portrait: str
    state: str
    frames_in: int
    frames_out: int
    frames_skipped: int
    frames_sent: int
    frames_repeated: int
    dropped: int
    errors: int
    face_found: bool
    fps: float
    engine_ms_p50: float
    engine_ms_p95: float
    speech_start_ms: float
    interrupt_ms: float
    last_error: str


class Session:
    """State and teardown shared by every kind of session."""

    def __init__(self, kind: str, portrait: Portrait, job: EngineJob, clock: Clock,
                 stack: AsyncExitStack | None = None) -> None:
        self.id = secrets.token_urlsafe(18)
        self.kind = kind
        self.portrait = portrait
        self.job = job
        self.created_ns = clock.now_ns()
        self.last_input_ns = self.created_ns
        self.closed = False
        self.end_reason = ""
        self.stack = stack or AsyncExitStack()  # what the session owns, released in reverse on close
        self._tasks: set[asyncio.Task[Any]] = set()
        self._on_end: list[EndListener] = []
        self.speech: SpeechInput | None = None  # talking heads: where the audio WebSocket's speech goes

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """Run a task owned by this session: cancelled and awaited when it closes, its failure logged."""
        if not self._tasks and not self.closed:
            self.stack.push_async_callback(self._cancel_tasks)
        task = asyncio.get_running_loop().create_task(coro, name=f"{name}-{self.id[:6]}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("session %s: task %s failed", self.id[:6], task.get_name(), exc_info=task.exception())

    async def _cancel_tasks(self) -> None:
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def on_end(self, listener: EndListener) -> Callable[[], None]:
        """Call ``listener(reason)`` when the session ends (e.g. to tell an attached WebSocket); returns a
        function that forgets the listener (the socket went first)."""
        self._on_end.append(listener)
        return lambda: self._on_end.remove(listener) if listener in self._on_end else None

    async def notify_end(self) -> None:
        for listener in self._on_end:
            try:
                await listener(self.end_reason)
            except Exception:  # a listener's failure (a socket already gone) must not stop the teardown
                log.exception("session %s: end listener failed", self.id[:6])
        self._on_end.clear()

    @property
    def state(self) -> str:
        return "open"

    def keeps_alive(self) -> bool:
        """True while something other than input frames proves the client is there (see the reaper)."""
        return False

    def connecting(self) -> bool:
        """True while the client has not connected yet (a WebRTC peer still negotiating)."""
        return False

    def frames_sent(self) -> tuple[int, int]:
        """(frames sent, of which repeats) by the session's output."""
        return self.job.stats.frames_out, 0

    def info(self, now_ns: int) -> SessionInfo:
        stats = self.job.stats
        ring = self.job.input_stats()
        sent, repeated = self.frames_sent()
        return SessionInfo(id=self.id, kind=self.kind, portrait=self.portrait.id, state=self.state,
                           frames_in=ring.written, frames_out=stats.frames_out,
                           frames_skipped=stats.frames_skipped, frames_sent=sent,
                           frames_repeated=repeated, dropped=ring.dropped, errors=stats.errors,
                           face_found=stats.face_found, fps=round(stats.fps(now_ns), 1),
                           engine_ms_p50=stats.engine_percentile(0.5), engine_ms_p95=stats.engine_percentile(0.95),
                           speech_start_ms=round(stats.speech_start_ms, 1), interrupt_ms=round(stats.interrupt_ms, 1),
                           last_error=stats.last_error)


class RtcSession(Session):
    """A WebRTC session: the client's video in (puppet, echo) or speech over the WebSocket (talk), the
    avatar out on the same peer connection, and WHEP viewers of the same output."""

    def __init__(self, kind: str, portrait: Portrait, job: EngineJob, pc: RTCPeerConnection,
                 output: RingVideoTrack, clock: Clock, stack: AsyncExitStack | None = None) -> None:
        super().__init__(kind, portrait, job, clock, stack)
        self.pc = pc
        self.output = output
        self.viewers: dict[str, tuple[RTCPeerConnection, RingVideoTrack]] = {}

    @property
    def state(self) -> str:
        return str(self.pc.connectionState)

    def keeps_alive(self) -> bool:
        # A talking head waits for speech as long as someone watches it.
        return self.kind == "talk" and self.pc.connectionState == "connected"

    def connecting(self) -> bool:
        return self.pc.connectionState in ("new", "connecting")

    def frames_sent(self) -> tuple[int, int]:
        return self.output.sent, self.output.repeated


class FramesSession(Session):
    """A talking head whose frames go back over the audio WebSocket that feeds it (frames mode). Its input
    is that socket's audio and control messages: without any for ``server.idle_timeout_s`` it is reaped."""

    def __init__(self, portrait: Portrait, job: EngineJob, clock: Clock) -> None:
        super().__init__("frames", portrait, job, clock)
