"""Sessions: one peer connection (or WebSocket) and its engine job, created, watched and torn down here.

Every task a session starts is owned by it and cancelled-and-awaited on close; the engine worker
detaches the job before its resources are freed, so a client that vanishes leaks nothing.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeAlias

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from livepuppet.engine.clock import Clock
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.speech.mouth_model import AudioMouthModel
from livepuppet.engine.speech.talking_head import TalkingHead
from livepuppet.errors import InputError, LivepuppetError
from livepuppet.streaming.frame_ring import FrameRing
from livepuppet.streaming.server.audio_playout import AudioPlayout
from livepuppet.streaming.server.codec_tuning import tune_video_codecs
from livepuppet.streaming.server.driver_pool import DriverPool
from livepuppet.streaming.server.engine_worker import EngineWorker
from livepuppet.streaming.server.ice import restrict_host_addresses
from livepuppet.streaming.server.metrics import ServerMetrics
from livepuppet.streaming.server.portraits import Portrait
from livepuppet.streaming.server.puppet_job import EchoJob, PuppetJob
from livepuppet.streaming.server.talk_job import FramesTalkJob, TalkJob
from livepuppet.streaming.server.tracks import AUDIO_RATE, PlayoutAudioTrack, RingVideoTrack, pump_video

log = logging.getLogger(__name__)

SESSION_KINDS = ("puppet", "echo", "talk")
CONVERT_THREADS = 2  # RGB conversion of received frames
BLOCKING_THREADS = 6  # the loop's default executor: aiortc's encoders/decoders, portrait preparation
MAX_SDP_BYTES = 64 * 1024
OUTPUT_RING_SLOTS = 3
MAX_VIEWERS = 8  # WHEP viewers per session


Job: TypeAlias = PuppetJob | EchoJob | TalkJob


class SessionLimit(LivepuppetError):
    """The server is at its session cap."""


class UnknownSession(InputError):
    """No such session (ended, expired or never existed)."""


class BadOffer(InputError):
    """The SDP offer cannot be used."""


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What a session reports to its client (``GET /api/sessions/{id}``)."""

    id: str
    kind: str
    portrait: str
    state: str
    frames_in: int
    frames_out: int
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
    """A WebRTC session: the client's video in, the avatar (or echo) out, one engine job between."""

    def __init__(self, kind: str, portrait: Portrait, job: Job, pc: RTCPeerConnection,
                 output: RingVideoTrack, clock: Clock) -> None:
        self.id = secrets.token_urlsafe(18)
        self.kind = kind
        self.portrait = portrait
        self.job = job
        self.pc = pc
        self.output = output
        self.created_ns = clock.now_ns()
        self.last_input_ns = self.created_ns
        self.closed = False
        self.viewers: dict[str, tuple[RTCPeerConnection, RingVideoTrack]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"{name}-{self.id[:6]}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("session %s: task %s failed", self.id[:6], task.get_name(), exc_info=task.exception())

    async def cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def info(self) -> SessionInfo:
        stats = self.job.stats
        engine = sorted(stats.engine_ms)
        ring = self.job.input_stats()

        def pct(q: float) -> float:
            return round(engine[min(len(engine) - 1, int(q * len(engine)))], 2) if engine else 0.0

        return SessionInfo(id=self.id, kind=self.kind, portrait=self.portrait.id, state=self.pc.connectionState,
                           frames_in=ring.written, frames_out=stats.frames_out, frames_sent=self.output.sent,
                           frames_repeated=self.output.repeated, dropped=ring.dropped, errors=stats.errors,
                           face_found=stats.face_found, fps=round(stats.fps(), 1), engine_ms_p50=pct(0.5),
                           engine_ms_p95=pct(0.95), speech_start_ms=round(stats.speech_start_ms, 1),
                           interrupt_ms=round(stats.interrupt_ms, 1), last_error=stats.last_error)


def _started_pool(threads: int, name: str) -> ThreadPoolExecutor:
    """A thread pool whose threads all exist from the start (pools otherwise grow lazily)."""
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
    barrier = threading.Barrier(threads)
    for future in [pool.submit(barrier.wait) for _ in range(threads)]:
        future.result()
    return pool


def _free_job(job: Job) -> None:
    """Release a job's engine resources now. A closed session's objects sit in reference cycles (peer
    connection callbacks) holding megabytes of frame buffers and codec state: collect them now rather
    than whenever the cycle collector next runs."""
    job.close()
    gc.collect()


class SessionManager:
    """Creates sessions up to the cap, closes idle or broken ones, and shares one engine worker."""

    def __init__(self, config: EngineConfig, clock: Clock, metrics: ServerMetrics) -> None:
        self._config = config
        self._clock = clock
        self._metrics = metrics
        self.worker = EngineWorker(config.server.engine_workers)
        self._convert = _started_pool(CONVERT_THREADS, "livepuppet-convert")
        self._blocking = _started_pool(BLOCKING_THREADS, "livepuppet-blocking")
        self._sessions: dict[str, Session] = {}
        self.drivers = DriverPool(config, config.server.max_sessions)
        self._speech_model: AudioMouthModel | None = None
        self._headless: set[FramesTalkJob] = set()
        self._reaper: asyncio.Task[None] | None = None
        tune_video_codecs(config.server.video_bitrate)
        restrict_host_addresses(config.server.ice_addresses)

    def start(self) -> None:
        # Encoders, decoders and portrait preparation run in the loop's default executor: a fixed pool,
        # started in full, so the server's thread count does not drift with load.
        asyncio.get_running_loop().set_default_executor(self._blocking)
        self._reaper = asyncio.get_running_loop().create_task(self._reap(), name="livepuppet-reaper")

    @property
    def count(self) -> int:
        """Sessions open now (WebRTC and WebSocket frames mode)."""
        return len(self._sessions) + len(self._headless)

    def _check_capacity(self) -> None:
        if self.count >= self._config.server.max_sessions:
            self._metrics.sessions_rejected.labels("cap").inc()
            raise SessionLimit(f"the server is at its limit of {self._config.server.max_sessions} sessions; "
                               "try again later")

    async def open_frames_session(self, portrait: Portrait,
                                  send: Callable[[int, float, int, bytes], None]) -> FramesTalkJob:
        """A WebSocket-only talking head (frames mode): no peer connection, JPEG frames back."""
        self._check_capacity()
        model = await self.speech_model()
        loop = asyncio.get_running_loop()
        head = await loop.run_in_executor(None, TalkingHead, portrait.source, self._config, model, self._clock)
        job = FramesTalkJob(f"frames-{secrets.token_hex(3)}", head, self._config.speech.fps,
                            self._config.render.crop_size, self._clock, self._metrics, send)
        self._headless.add(job)
        self.worker.add(job)
        self._metrics.sessions.labels("frames").inc()
        self._metrics.sessions_started.labels("frames").inc()
        return job

    async def close_frames_session(self, job: FramesTalkJob) -> None:
        if job not in self._headless:
            return
        self._headless.discard(job)
        await asyncio.get_running_loop().run_in_executor(None, self.worker.remove, job)
        self._metrics.sessions.labels("frames").dec()

    def get(self, session_id: str) -> Session:
        try:
            return self._sessions[session_id]
        except KeyError:
            raise UnknownSession("no such session (it ended, timed out or never existed)") from None

    async def create(self, offer_sdp: str, portrait: Portrait, kind: str) -> tuple[Session, str]:
        """Answer a client's SDP offer with a new session; returns it and the SDP answer."""
        if kind not in SESSION_KINDS:
            raise BadOffer(f"unknown session mode {kind!r}; use one of {', '.join(SESSION_KINDS)}")
        if len(offer_sdp.encode()) > MAX_SDP_BYTES:
            raise BadOffer(f"SDP offer larger than {MAX_SDP_BYTES} bytes")
        if "m=video" not in offer_sdp:
            raise BadOffer("the SDP offer has no video (m=video) section: send a camera track, or for a "
                           "talking head ask to receive video")
        self._check_capacity()
        loop = asyncio.get_running_loop()
        input_ring = FrameRing(on_write=self.worker.notify)
        name = f"{kind}-{secrets.token_hex(3)}"
        job: Job
        playout: AudioPlayout | None = None
        if kind == "puppet":
            job = await loop.run_in_executor(None, PuppetJob, name, portrait.source, self._config, self._clock,
                                             self._metrics, input_ring, self.drivers)
        elif kind == "talk":
            model = await self.speech_model()
            speech = self._config.speech
            playout = AudioPlayout(AUDIO_RATE, speech.preroll_s, speech.max_buffer_s, self._clock)
            head = await loop.run_in_executor(None, TalkingHead, portrait.source, self._config, model, self._clock)
            job = TalkJob(name, head, playout, self._clock, self._metrics)
        else:
            job = EchoJob(name, self._clock, self._metrics, input_ring)
        output = RingVideoTrack(OUTPUT_RING_SLOTS, self._config.server.fps, self._clock, self._metrics,
                                portrait.crop, loop)
        job.add_output(output.ring)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        session = Session(kind, portrait, job, pc, output, self._clock)

        def on_frame() -> None:
            session.last_input_ns = self._clock.now_ns()

        @pc.on("track")
        def on_track(track: Any) -> None:
            if track.kind == "video":
                session.spawn(pump_video(track, input_ring, self._clock, self._metrics, self._convert, on_frame),
                              "pump")

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.close(session.id)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            pc.addTrack(output)
            if playout is not None:
                pc.addTrack(PlayoutAudioTrack(playout, self._clock))
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            await pc.close()
            await loop.run_in_executor(None, job.close)
            raise BadOffer(f"malformed SDP offer: {exc}") from exc
        self._sessions[session.id] = session
        self.worker.add(job)
        if isinstance(job, TalkJob):
            session.spawn(self._tick(job), "ticker")
        self._metrics.sessions.labels(kind).inc()
        self._metrics.sessions_started.labels(kind).inc()
        log.info("session %s (%s, portrait %s) started", session.id[:6], kind, portrait.id[:8])
        return session, pc.localDescription.sdp

    async def speech_model(self) -> AudioMouthModel:
        """The audio→mouth model, loaded once (blocking load off the loop)."""
        if self._speech_model is None:
            loop = asyncio.get_running_loop()
            path = self._config.speech.model or None
            self._speech_model = await loop.run_in_executor(None, AudioMouthModel.load, path, 1)
        return self._speech_model

    async def _tick(self, job: TalkJob) -> None:
        """Ask the engine for a talking-head frame at the output cadence (drift-free)."""
        interval_ns = int(1e9 / self._config.server.fps)
        next_ns = self._clock.now_ns()
        while True:
            job.tick()
            self.worker.notify()
            next_ns += interval_ns
            now = self._clock.now_ns()
            if next_ns < now - 5 * interval_ns:  # the loop stalled: skip ahead instead of bursting
                next_ns = now
            await asyncio.sleep(max(0.0, (next_ns - now) / 1e9))

    async def add_viewer(self, session_id: str, offer_sdp: str) -> tuple[str, str]:
        """WHEP egress: another peer watches a session's output (e.g. a WHIP publisher such as OBS, which
        gets no video back itself). Returns (viewer id, SDP answer)."""
        session = self.get(session_id)
        if len(offer_sdp.encode()) > MAX_SDP_BYTES or "m=video" not in offer_sdp:
            raise BadOffer("a WHEP offer must be an SDP offer (≤ 64 KiB) that receives video")
        if len(session.viewers) >= MAX_VIEWERS:
            raise SessionLimit(f"a session has at most {MAX_VIEWERS} viewers")
        loop = asyncio.get_running_loop()
        track = RingVideoTrack(OUTPUT_RING_SLOTS, self._config.server.fps, self._clock, self._metrics,
                               session.portrait.crop, loop)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        viewer_id = secrets.token_urlsafe(12)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            pc.addTrack(track)
            await pc.setLocalDescription(await pc.createAnswer())
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            await pc.close()
            raise BadOffer(f"malformed SDP offer: {exc}") from exc
        session.job.add_output(track.ring)
        session.viewers[viewer_id] = (pc, track)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.remove_viewer(session_id, viewer_id)

        return viewer_id, pc.localDescription.sdp

    async def remove_viewer(self, session_id: str, viewer_id: str) -> bool:
        session = self._sessions.get(session_id)
        entry = session.viewers.pop(viewer_id, None) if session else None
        if session is None or entry is None:
            return False
        pc, track = entry
        session.job.remove_output(track.ring)
        track.stop()
        await pc.close()
        pc.remove_all_listeners()
        return True

    async def close(self, session_id: str) -> bool:
        """End a session and free everything it holds; False if it was already gone."""
        session = self._sessions.pop(session_id, None)
        if session is None or session.closed:
            return False
        session.closed = True
        loop = asyncio.get_running_loop()
        session.job.close_input()
        await loop.run_in_executor(None, self.worker.remove, session.job)
        await session.cancel_tasks()
        for viewer_id in list(session.viewers):
            session.viewers[viewer_id][0].remove_all_listeners()
            pc, track = session.viewers.pop(viewer_id)
            track.stop()
            await pc.close()
        session.output.stop()
        await session.pc.close()
        session.pc.remove_all_listeners()
        await loop.run_in_executor(None, _free_job, session.job)
        self._metrics.sessions.labels(session.kind).dec()
        log.info("session %s closed", session.id[:6])
        return True

    async def _reap(self) -> None:
        """Once a second: close idle or failed sessions and update the fps gauge."""
        idle_ns = int(self._config.server.idle_timeout_s * 1e9)
        while True:
            await asyncio.sleep(1.0)
            now = self._clock.now_ns()
            fps = sum(job.stats.fps(now) for job in self._headless)
            for session in list(self._sessions.values()):
                fps += session.job.stats.fps(now)
                if session.kind == "talk" and session.pc.connectionState == "connected":
                    session.last_input_ns = now  # a talking head waits for speech as long as someone watches
                if now - session.last_input_ns > idle_ns or session.job.failed:
                    reason = "failed" if session.job.failed else "idle"
                    log.info("closing %s session %s", reason, session.id[:6])
                    await self.close(session.id)
            self._metrics.engine_fps.set(fps)

    async def aclose(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
        for session_id in list(self._sessions):
            await self.close(session_id)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.worker.close)
        await loop.run_in_executor(None, self.drivers.close)
        self._convert.shutdown(wait=True)
