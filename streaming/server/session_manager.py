"""Creates sessions up to the cap, finds them by id, closes them (on request, when idle, when their job
failed, at shutdown) and runs the reaper. Shared engine resources live in :class:`EngineResources`;
peer-connection details in :mod:`~livepuppet.streaming.server.webrtc`."""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
from contextlib import AsyncExitStack
from typing import Any

import numpy as np
from livepuppet.engine.clock import Clock
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.speech.generator import TalkingHeadGenerator
from livepuppet.engine.speech.mouth_model import SAMPLE_RATE
from livepuppet.errors import InputError, LivepuppetError
from livepuppet.streaming.frame_ring import FrameRing
from livepuppet.streaming.server.audio_playout import AudioPlayout
from livepuppet.streaming.server.engine_job import UNMEASURED_CORES, EngineJob
from livepuppet.streaming.server.metrics import ServerMetrics
from livepuppet.streaming.server.portraits import Portrait
from livepuppet.streaming.server.puppet_job import EchoJob, PuppetJob
from livepuppet.streaming.server.resources import EngineResources
from livepuppet.streaming.server.session import FramesSession, RtcSession, Session
from livepuppet.streaming.server.speech_input import LocalSpeech, SpeechInput
from livepuppet.streaming.server.talk_job import EventSink, FrameSink, FramesJob, TalkJob
from livepuppet.streaming.server.tracks import AUDIO_RATE, PlayoutAudioTrack, RingVideoTrack, pump_video
from livepuppet.streaming.server.webrtc import BadOffer, answer_offer, check_offer_text, close_peer, new_peer
from livepuppet.streaming.server.worker_pool import RemoteJob, RemoteSpeech

log = logging.getLogger(__name__)

RTC_KINDS = ("puppet", "echo", "talk")
OUTPUT_RING_SLOTS = 3
MAX_VIEWERS = 8  # WHEP viewers per session
# Frames mode plays no audio: its timeline runs at the audio model's rate, so 16 kHz speech is taken in
# without resampling (to 48 kHz, only to be dropped: about a sixth of speech intake in the worker profile).
FRAMES_AUDIO_RATE = SAMPLE_RATE
PLAYOUT_PREROLL_S = 0.03  # the audio track's jitter buffer: one 20 ms packet plus the loop's jitter


class SessionLimit(LivepuppetError):
    """The server is at its session cap or its engine at capacity (HTTP 503 with Retry-After seconds)."""

    def __init__(self, message: str, retry_after: int = 10) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnknownSession(InputError):
    """No such session (ended, expired or never existed)."""


def _free_job(job: EngineJob) -> None:
    """Release a job's engine resources now. A closed session's objects sit in reference cycles (peer
    connection callbacks) holding megabytes of frame buffers and codec state: collect them now rather
    than whenever the cycle collector next runs."""
    job.close()
    gc.collect()


class SessionManager:
    """Every session of one server, WebRTC and frames mode alike."""

    def __init__(self, config: EngineConfig, clock: Clock, metrics: ServerMetrics,
                 resources: EngineResources) -> None:
        self._config = config
        self._clock = clock
        self._metrics = metrics
        self.resources = resources
        self._sessions: dict[str, Session] = {}
        self._reaper: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reaper = asyncio.get_running_loop().create_task(self._reap(), name="livepuppet-reaper")

    @property
    def count(self) -> int:
        """Sessions open now (WebRTC and WebSocket frames mode)."""
        return len(self._sessions)

    def get(self, session_id: str) -> Session:
        try:
            return self._sessions[session_id]
        except KeyError:
            raise UnknownSession("no such session (it ended, timed out or never existed)") from None

    def _check_capacity(self) -> None:
        server = self._config.server
        if self.count >= server.max_sessions:
            self._metrics.sessions_rejected.labels("cap").inc()
            raise SessionLimit(f"the server is at its limit of {server.max_sessions} sessions; try again later")
        if server.admission == "refuse" and self.resources.pool is not None:
            capacity = self.resources.capacity * (1.0 - server.capacity_margin)
            costs = [self._cost(session) for session in self._sessions.values()]
            demand = sum(costs)
            new = float(np.median(costs)) if costs else UNMEASURED_CORES
            if costs and demand + new > capacity:  # an idle engine always takes a session
                self._metrics.sessions_rejected.labels("capacity").inc()
                raise SessionLimit(f"the engine is at capacity: {len(costs)} sessions need {demand:.2f} of "
                                   f"{self.resources.capacity:.0f} cores; try again later", retry_after=5)

    def _cost(self, session: Session) -> float:
        """Cores a session needs at its frame rate, from its measured engine time per frame."""
        fps = self._config.speech.fps if session.kind == "frames" else self._config.server.fps
        return session.job.stats.cores_needed(fps)

    async def _generator(self, portrait: Portrait, fps: float, audio_rate: int) -> TalkingHeadGenerator:
        model = await self.resources.speech_model()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            None, lambda: TalkingHeadGenerator(portrait.source, self._config, model, fps=fps, audio_rate=audio_rate,
                                               clock=self._clock))

    def _register(self, session: Session) -> None:
        """Start serving a fully built session: into the registry, onto the engine worker."""
        worker = self.resources.worker
        loop = asyncio.get_running_loop()
        self._sessions[session.id] = session
        session.stack.callback(self._sessions.pop, session.id, None)
        if not isinstance(session.job, RemoteJob):  # a remote job is stepped by its worker process
            worker.add(session.job)
            session.stack.push_async_callback(loop.run_in_executor, None, worker.remove, session.job)
        session.stack.callback(session.job.close_input)
        self._metrics.sessions.labels(session.kind).inc()
        session.stack.callback(self._metrics.sessions.labels(session.kind).dec)
        self._metrics.sessions_started.labels(session.kind).inc()
        log.info("session %s (%s, portrait %s) started", session.id[:6], session.kind, session.portrait.id[:8])

    async def open_frames(self, portrait: Portrait, send: FrameSink, on_event: EventSink) -> FramesSession:
        """A WebSocket-only talking head (frames mode): no peer connection, JPEG frames back over ``send``;
        ``on_event(ServerEvent)`` gets speaking on/off (both called from another thread)."""
        self._check_capacity()
        loop = asyncio.get_running_loop()
        name = f"frames-{secrets.token_hex(3)}"
        fps = self._config.speech.fps
        job: EngineJob
        if self.resources.pool is not None:
            remote = await self.resources.pool.open("frames", name, portrait, fps, FRAMES_AUDIO_RATE, self._clock,
                                                    self._metrics, None, None, None)
            remote.send_frame, remote.on_event = send, on_event
            model = await self.resources.speech_model()
            job, speech = remote, RemoteSpeech(remote, fps, model.lookahead_s)
        else:
            generator = await self._generator(portrait, fps, FRAMES_AUDIO_RATE)
            job = FramesJob(name, generator, self._config.render.crop_size, self._clock, self._metrics, send,
                            on_event, self._config.speech.frames_max_lag_s)
            speech = LocalSpeech(generator, self.resources.ingest, self.resources.worker.notify)
        session = FramesSession(portrait, job, self._clock)
        session.speech = speech
        session.stack.push_async_callback(loop.run_in_executor, None, _free_job, job)
        try:
            self._register(session)
        except BaseException:
            await session.stack.aclose()
            raise
        return session

    async def create(self, offer_sdp: str, portrait: Portrait, kind: str) -> tuple[RtcSession, str]:
        """Answer a client's SDP offer with a new WebRTC session; returns it and the SDP answer. Whatever
        fails on the way releases everything built so far."""
        if kind not in RTC_KINDS:
            raise BadOffer(f"unknown session mode {kind!r}; use one of {', '.join(RTC_KINDS)}")
        check_offer_text(offer_sdp, mode=kind)
        self._check_capacity()
        loop = asyncio.get_running_loop()
        stack = AsyncExitStack()  # everything built below, released in reverse if any step fails
        try:
            name = f"{kind}-{secrets.token_hex(3)}"
            job, input_ring, playout, speech = await self._rtc_job(kind, name, portrait)
            stack.push_async_callback(loop.run_in_executor, None, _free_job, job)
            output = RingVideoTrack(OUTPUT_RING_SLOTS, self._config.server.fps, self._clock, self._metrics,
                                    portrait.crop, loop)
            stack.callback(output.stop)
            job.add_output(output.ring)
            pc = new_peer()
            stack.push_async_callback(close_peer, pc)
            session = RtcSession(kind, portrait, job, pc, output, self._clock, stack)

            session.speech = speech
            remote = job if isinstance(job, RemoteJob) else None

            def on_frame() -> None:
                session.last_input_ns = self._clock.now_ns()
                if remote is not None:
                    remote.notify_input()

            @pc.on("track")
            def on_track(track: Any) -> None:
                if track.kind == "video" and input_ring is not None:
                    session.spawn(pump_video(track, input_ring, self._clock, self._metrics, self.resources.convert,
                                             on_frame, self._config.tracker.max_side), "pump")

            @pc.on("connectionstatechange")
            async def on_state() -> None:
                if pc.connectionState in ("failed", "closed"):
                    await self.close(session.id, "closed")

            tracks = [output] + ([PlayoutAudioTrack(playout, self._clock)] if playout is not None else [])
            answer = await answer_offer(pc, offer_sdp, tracks)
            self._register(session)
            if kind == "talk":
                session.spawn(self._tick(job), "ticker")  # type: ignore[arg-type]
        except BaseException:
            await stack.aclose()
            raise
        return session, answer

    async def _rtc_job(self, kind: str, name: str, portrait: Portrait
                       ) -> tuple[EngineJob, FrameSink | None, AudioPlayout | None, SpeechInput | None]:
        """The engine job of a WebRTC session, here or on a worker process: (job, the ring its input video
        goes to, the talking head's audio buffer, its speech input)."""
        loop = asyncio.get_running_loop()
        playout = AudioPlayout(AUDIO_RATE, PLAYOUT_PREROLL_S) if kind == "talk" else None
        pool = self.resources.pool
        if pool is not None:
            side, crop = self._config.tracker.max_side, self._config.render.crop_size
            out = (side, side) if kind == "echo" else (crop, crop)
            remote = await pool.open(kind, name, portrait, self._config.server.fps, AUDIO_RATE, self._clock,
                                     self._metrics, (side, side) if kind != "talk" else None, out, playout)
            model = await self.resources.speech_model() if kind == "talk" else None
            speech = RemoteSpeech(remote, self._config.server.fps, model.lookahead_s) if model else None
            return remote, remote.input_ring, playout, speech
        input_ring = FrameRing(on_write=self.resources.worker.notify)
        if kind == "puppet":
            job: EngineJob = await loop.run_in_executor(None, PuppetJob, name, portrait.source, self._config,
                                                        self._clock, self._metrics, input_ring, self.resources.drivers)
            return job, input_ring, None, None
        if kind == "talk":
            assert playout is not None
            generator = await self._generator(portrait, self._config.server.fps, AUDIO_RATE)
            talk = TalkJob(name, generator, playout, self._clock, self._metrics)
            speech = LocalSpeech(generator, self.resources.ingest, self.resources.worker.notify, playout.clear)
            return talk, None, playout, speech
        return EchoJob(name, self._clock, self._metrics, input_ring), input_ring, None, None

    async def _tick(self, job: TalkJob | RemoteJob) -> None:
        """Plan a talking-head frame at the output cadence (drift-free; skips ahead after a stall)."""
        interval_ns = int(1e9 / self._config.server.fps)
        next_ns = self._clock.now_ns()
        while True:
            job.tick()
            self.resources.worker.notify()
            next_ns += interval_ns
            now = self._clock.now_ns()
            if next_ns < now - 5 * interval_ns:
                next_ns = now
            await asyncio.sleep(max(0.0, (next_ns - now) / 1e9))

    def rtc(self, session_id: str) -> RtcSession:
        session = self.get(session_id)
        if not isinstance(session, RtcSession):
            raise InputError(f"session {session_id[:6]}… is a {session.kind} session without WebRTC")
        return session

    async def add_viewer(self, session_id: str, offer_sdp: str) -> tuple[str, str]:
        """WHEP egress: another peer watches a session's output (e.g. a WHIP publisher such as OBS, which
        gets no video back itself). Returns (viewer id, SDP answer)."""
        session = self.rtc(session_id)
        check_offer_text(offer_sdp, "WHEP offer", mode="view")
        if len(session.viewers) >= MAX_VIEWERS:
            raise SessionLimit(f"a session has at most {MAX_VIEWERS} viewers")
        loop = asyncio.get_running_loop()
        track = RingVideoTrack(OUTPUT_RING_SLOTS, self._config.server.fps, self._clock, self._metrics,
                               session.portrait.crop, loop)
        pc = new_peer()
        try:
            answer = await answer_offer(pc, offer_sdp, [track])
        except BadOffer:
            track.stop()
            await close_peer(pc)
            raise
        viewer_id = secrets.token_urlsafe(12)
        session.job.add_output(track.ring)
        session.viewers[viewer_id] = (pc, track)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.remove_viewer(session_id, viewer_id)

        if len(session.viewers) == 1:
            session.stack.push_async_callback(self._close_viewers, session)
        return viewer_id, answer

    async def remove_viewer(self, session_id: str, viewer_id: str) -> bool:
        session = self._sessions.get(session_id)
        entry = session.viewers.pop(viewer_id, None) if isinstance(session, RtcSession) else None
        if session is None or entry is None:
            return False
        pc, track = entry
        session.job.remove_output(track.ring)
        track.stop()
        await close_peer(pc)
        return True

    async def _close_viewers(self, session: RtcSession) -> None:
        for viewer_id in list(session.viewers):
            await self.remove_viewer(session.id, viewer_id)

    async def close(self, session_id: str, reason: str = "closed") -> bool:
        """End a session and free everything it holds; False if it was already gone."""
        session = self._sessions.get(session_id)
        if session is None or session.closed:
            return False
        session.closed = True
        session.end_reason = reason
        await session.stack.aclose()
        await session.notify_end()
        log.info("session %s closed (%s)", session.id[:6], reason)
        return True

    def touch(self, session: Session) -> None:
        """Input arrived for ``session`` (audio, a control message): it is not idle."""
        session.last_input_ns = self._clock.now_ns()

    async def _reap(self) -> None:
        """Once a second: close failed, never connected and idle sessions and update the fps gauge."""
        idle_ns = int(self._config.server.idle_timeout_s * 1e9)
        connect_ns = int(self._config.server.connect_timeout_s * 1e9)
        while True:
            await asyncio.sleep(1.0)
            now = self._clock.now_ns()
            self._update_load_metrics(now)
            fps = 0.0
            for session in list(self._sessions.values()):
                fps += session.job.stats.fps(now)
                if session.keeps_alive():
                    session.last_input_ns = now
                if session.job.failed:
                    await self.close(session.id, "failed")
                elif session.connecting() and now - session.created_ns > connect_ns:
                    # A valid offer whose peer never connects (gone, or behind a firewall) frees its slot.
                    await self.close(session.id, "never_connected")
                elif now - session.last_input_ns > idle_ns:
                    await self.close(session.id, "idle")
            self._metrics.engine_fps.set(fps)

    def _update_load_metrics(self, now_ns: int) -> None:
        resources = self.resources
        resources.sample_load(now_ns)
        self._metrics.engine_load.set(resources.load)
        self._metrics.engine_capacity.set(resources.capacity)
        self._metrics.front_load.set(resources.front_load)
        if resources.pool is not None:
            for handle in resources.pool.handles:
                label = str(handle.index)
                self._metrics.worker_load.labels(label).set(handle.busy)
                self._metrics.worker_sessions.labels(label).set(len(handle.jobs))
                self._metrics.worker_up.labels(label).set(1.0 if handle.alive else 0.0)
            self._metrics.worker_restarts.set(resources.pool.restarts)

    async def aclose(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
        for session_id in list(self._sessions):
            await self.close(session_id, "shutdown")
