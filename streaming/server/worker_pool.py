"""Engine worker processes seen from the front: start them, place sessions on the least-loaded one, relay
their frames and events, notice when one dies (its sessions end, a new process takes its place) and know
how loaded they are (admission).

A session placed on a worker has a :class:`RemoteJob` here: the same manager-facing contract as a local
job (outputs, stats, failure, controls, close), backed by the real job in the worker. Its input and output
frames cross in shared-memory rings this process creates and frees.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import itertools
import logging
import os
import socket
import struct
import subprocess
import sys
import termios
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import Any

import numpy as np
from livepuppet.engine.clock import Clock
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.speech.generator import BufferFull, check_emotion
from livepuppet.engine.speech.mouth_model import MouthFrame
from livepuppet.errors import InputError, LivepuppetError
from livepuppet.streaming.frame_ring import RingStats
from livepuppet.streaming.protocol import ServerEvent
from livepuppet.streaming.server import worker_messages as m
from livepuppet.streaming.server.audio_playout import AudioPlayout
from livepuppet.streaming.server.controls import Controls
from livepuppet.streaming.server.engine_job import UNMEASURED_CORES, EngineJob
from livepuppet.streaming.server.metrics import ServerMetrics
from livepuppet.streaming.server.portraits import Portrait
from livepuppet.streaming.server.talk_job import EventSink, FrameSink
from livepuppet.streaming.server.worker_process import WorkerInit
from livepuppet.streaming.shared_ring import SharedFrameRing

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0
OPEN_TIMEOUT_S = 30.0
# Commands queued for a worker that is not reading them: past this it is taken for hung (about 80 s of one
# talking head's 20 ms audio chunks, beyond what one socket may leave unanswered).
MAX_OUTBOX = 4000
# A worker sends its stats twice a second; one that has said nothing for this long (stopped, or stuck with
# the interpreter lock held) is taken for hung, even when its sessions send it nothing to pile up.
SILENT_S = 10.0
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


class WorkerDied(LivepuppetError):
    """The engine worker process serving a session ended."""


class WorkerHandle:
    """One worker process and the pipe to it; a reader thread dispatches what it says."""

    def __init__(self, index: int, config: EngineConfig, threads: int, on_death: Callable[[WorkerHandle], None],
                 metrics: ServerMetrics) -> None:
        self.index = index
        self._on_death = on_death
        self._metrics = metrics  # the front's: what the worker measured is replayed into it
        # A fresh interpreter (not a fork of a process running threads and an event loop, and not
        # multiprocessing's spawn, which re-imports the caller's __main__), on one end of a socket pair.
        ours, theirs = socket.socketpair()
        env = {**os.environ, **{name: str(threads) for name in THREAD_ENV}, "GLOG_minloglevel": "2"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "livepuppet.streaming.server.worker_process", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        self._send_buffer = ours.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        self._conn = Connection(ours.detach())
        self._conn.send(WorkerInit(config, threads, logging.getLogger().level))
        self._outbox: deque[bytes | None] = deque()  # pickled commands for the writer thread; None: stop
        self._outbox_ready = threading.Condition()
        self._writing = False  # a write is under way (on the writer thread or a caller's)
        self.jobs: dict[str, RemoteJob] = {}
        # Portraits sent (or being sent) to this worker: a job's OpenJob must follow its AddPortrait.
        self.portraits: dict[str, asyncio.Future[None]] = {}
        self.busy = 0.0  # cores busy, from the last stats
        self.opened_since_stats = 0
        self.alive = True
        self._ready = threading.Event()
        self._requests: dict[int, Future[Any]] = {}
        self._ids = itertools.count()
        self._reader = threading.Thread(target=self._read, name=f"livepuppet-worker-{index}-rx", daemon=True)
        self._reader.start()
        self._writer = threading.Thread(target=self._write, name=f"livepuppet-worker-{index}-tx", daemon=True)
        self._writer.start()

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        if not self._ready.wait(timeout) or not self.alive:
            raise WorkerDied(f"engine worker {self.index} did not start")

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def load(self) -> float:
        return self.busy + UNMEASURED_CORES * self.opened_since_stats

    def send(self, message: m.Command) -> None:
        """Send ``message`` to the worker without ever blocking (a stalled worker must not stall the event
        loop): written at once when the socket has room (the common case: a thread hop here cost a webcam
        session ~28 ms of latency), else queued for the writer thread. A worker that stops reading for long
        is taken for hung and killed: its sessions end, it restarts."""
        data = bytes(ForkingPickler.dumps(message))
        with self._outbox_ready:
            if not self.alive:
                raise WorkerDied(f"engine worker {self.index} is down")
            direct = not self._writing and not self._outbox and self._room_for(len(data))
            if direct:
                self._writing = True  # the order of messages is kept: nothing else writes meanwhile
            else:
                self._outbox.append(data)
                self._outbox_ready.notify()
            backlog = len(self._outbox)
        if direct:
            try:
                self._conn.send_bytes(data)
            except OSError:  # the worker is gone: the reader sees it and reports the death
                pass
            finally:
                with self._outbox_ready:
                    self._writing = False
                    if self._outbox:  # queued meanwhile: the writer takes over (else it sleeps on)
                        self._outbox_ready.notify()
        elif backlog == MAX_OUTBOX:
            log.error("engine worker %d (pid %s) has not read %d commands: killing it as hung", self.index,
                      self.pid, backlog)
            self.process.kill()

    def _room_for(self, size: int) -> bool:
        """Whether ``size`` more bytes surely fit the socket's send buffer (bytes still queued there, from
        the kernel; unknown counts as no room)."""
        try:
            queued = struct.unpack("i", fcntl.ioctl(self._conn.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]
        except OSError:
            return False
        return queued + size < self._send_buffer // 4

    def _write(self) -> None:
        while True:
            with self._outbox_ready:
                while not self._outbox or self._writing:
                    self._outbox_ready.wait()
                data = self._outbox.popleft()
                self._writing = data is not None
            if data is None:
                return
            try:
                self._conn.send_bytes(data)
            except OSError:  # the worker is gone: the reader sees it and reports the death
                with self._outbox_ready:
                    self._outbox.clear()
                    self._writing = False
                return
            with self._outbox_ready:
                self._writing = False
                self._outbox_ready.notify()

    def _stop_writing(self) -> None:
        with self._outbox_ready:
            self._outbox.append(None)
            self._outbox_ready.notify()

    def request(self, make: Callable[[int], m.Command]) -> Future[Any]:
        """Send a command that the worker answers (by request id); the future resolves on the reader thread."""
        return self._send_requests(lambda ids: make(ids[0]), 1)[0]

    def request_audio(self, job_id: str, chunks: list[tuple[np.ndarray, int]]) -> list[Future[Any]]:
        """Send audio chunks ``(pcm, sample_rate)`` in one message, each answered by its own reply; a future
        per chunk, in order (see :class:`RemoteSpeech`)."""
        def message(ids: list[int]) -> m.Command:
            items = tuple(m.PushAudio(job_id, r, pcm, rate) for r, (pcm, rate) in zip(ids, chunks, strict=True))
            return items[0] if len(items) == 1 else m.PushAudioBatch(job_id, items)
        return self._send_requests(message, len(chunks))

    def _send_requests(self, make: Callable[[list[int]], m.Command], count: int) -> list[Future[Any]]:
        """Register ``count`` request ids, send the one message ``make(ids)`` that carries them; a future per id
        (failed at once if the worker is down)."""
        ids = [next(self._ids) for _ in range(count)]
        futures: list[Future[Any]] = [Future() for _ in ids]
        self._requests.update(zip(ids, futures, strict=True))
        try:
            self.send(make(ids))
        except WorkerDied as exc:
            for request, future in zip(ids, futures, strict=True):
                self._requests.pop(request, None)
                future.set_exception(exc)
        return futures

    def _read(self) -> None:
        while True:
            try:
                if self._ready.is_set() and not self._conn.poll(SILENT_S):
                    log.error("engine worker %d (pid %s) has said nothing for %.0f s: killing it as hung",
                              self.index, self.pid, SILENT_S)
                    self.process.kill()  # its end of the socket closes: the next read ends this loop
                    continue
                event = self._conn.recv()
            except (EOFError, OSError):
                break
            try:
                self._dispatch(event)
            except Exception:  # one bad event must not stop the relay of every other session
                log.exception("worker %d: event %s failed", self.index, type(event).__name__)
        with self._outbox_ready:
            self.alive = False
        self._stop_writing()
        self._ready.set()
        for future in list(self._requests.values()):
            if not future.done():
                future.set_exception(WorkerDied(f"engine worker {self.index} died"))
        self._requests.clear()
        for job in list(self.jobs.values()):
            job.worker_died()
        self._on_death(self)

    def _dispatch(self, event: m.Event) -> None:
        if isinstance(event, m.WorkerReady):
            self._ready.set()
        elif isinstance(event, m.WorkerStats):
            self._metrics.replay(event.figures)
            self.busy = event.busy
            self.opened_since_stats = 0
            for job_id, snapshot in event.jobs.items():
                if (job := self.jobs.get(job_id)) is not None:
                    job.apply(snapshot)
        elif isinstance(event, m.Replies):
            for reply in event.replies:
                self._dispatch(reply)
        elif isinstance(event, (m.JobOpened, m.Reply)):
            key = event.request if isinstance(event, m.Reply) else -1
            if isinstance(event, m.JobOpened):
                job = self.jobs.get(event.job_id)
                if job is not None:
                    job.opened(event.error)
                return
            future = self._requests.pop(key, None)
            if future is not None and not future.done():
                future.set_result(event)
        else:
            job = self.jobs.get(event.job_id)
            if job is not None:
                job.deliver(event)

    def shutdown(self, timeout: float = 10.0) -> None:
        try:
            self.send(m.Shutdown())
        except WorkerDied:
            pass
        self._stop_writing()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)
        self._writer.join(timeout)
        self._conn.close()
        self._reader.join(timeout)


class RemoteJob(EngineJob):
    """The front's side of a job running in a worker process (never stepped here)."""

    def __init__(self, kind: str, job_id: str, handle: WorkerHandle, clock: Clock, metrics: ServerMetrics,
                 loop: asyncio.AbstractEventLoop, input_ring: SharedFrameRing | None,
                 output_ring: SharedFrameRing | None, playout: AudioPlayout | None, fps: float = 25.0) -> None:
        super().__init__(job_id, clock, metrics)
        self.kind = kind
        self.fps = fps
        self.handle = handle
        self._loop = loop
        self.input_ring = input_ring
        self.output_ring = output_ring
        self.playout = playout
        self.on_event: EventSink | None = None
        self.send_frame: FrameSink | None = None
        self._opened: Future[str] = Future()
        self._died = False
        self._last_out = -1
        self._closed = False
        self._rings_lock = threading.Lock()  # the relay (reader thread) never reads a ring being unmapped

    @property
    def demand(self) -> float:
        """Cores this job needs at its frame rate (measured, or assumed until measured)."""
        return self.stats.cores_needed(self.fps)

    # -- manager-facing contract --------------------------------------------------------------------------

    def _has_work(self) -> bool:
        return False

    def _run(self, start_ns: int) -> bool:  # pragma: no cover - the worker process steps the real job
        return False

    @property
    def failed(self) -> bool:
        return self._failed or self._died

    def input_stats(self) -> RingStats:
        with self._rings_lock:
            return self.input_ring.stats() if self.input_ring is not None and not self._closed else RingStats()

    def close_input(self) -> None:
        with self._rings_lock:
            if self.input_ring is not None and not self._closed:
                self.input_ring.close()

    def control(self, controls: Controls) -> None:
        if self.kind != "puppet":
            super().control(controls)
        self._send(m.Control(self.name, controls))

    def close(self) -> None:
        """Close the worker's job, then free the shared rings (blocking: called off the event loop)."""
        with self._rings_lock:
            if self._closed:
                return
            self._closed = True
        self.handle.jobs.pop(self.name, None)
        if self.handle.alive:
            try:
                self.handle.send(m.CloseJob(self.name))
            except WorkerDied:
                pass
        with self._rings_lock:
            for ring in (self.input_ring, self.output_ring):
                if ring is not None:
                    ring.unlink()

    # -- talk and frames ---------------------------------------------------------------------------------

    def tick(self) -> None:
        queued = self.playout.queued_s if self.playout is not None else 0.0
        self._send(m.Tick(self.name, queued))

    def sent(self) -> None:
        self._send(m.FrameSent(self.name))

    def set_max_lag(self, seconds: float) -> None:
        """Frames mode: the client's pacing (see ``FramesJob.set_max_lag``)."""
        self._send(m.SetMaxLag(self.name, seconds))

    def notify_input(self) -> None:
        self._send(m.InputFrame(self.name))

    def _send(self, message: m.Command) -> None:
        try:
            self.handle.send(message)
        except WorkerDied:
            self._died = True

    # -- from the reader thread ------------------------------------------------------------------------------

    def opened(self, error: str) -> None:
        if not self._opened.done():
            self._opened.set_result(error)

    async def wait_opened(self) -> None:
        error = await asyncio.wait_for(asyncio.wrap_future(self._opened), OPEN_TIMEOUT_S)
        if error:
            raise InputError(f"the engine worker could not open the session: {error}")

    def worker_died(self) -> None:
        self._died = True
        self.stats.last_error = f"engine worker {self.handle.index} died"
        if not self._opened.done():
            self._opened.set_result(self.stats.last_error)

    def apply(self, s: m.JobStatsSnapshot) -> None:
        st = self.stats
        st.frames_out, st.errors, st.face_found, st.last_error = s.frames_out, s.errors, s.face_found, s.last_error
        st.frames_skipped = s.frames_skipped
        st.speech_start_ms, st.interrupt_ms, st.cost_ms = s.speech_start_ms, s.interrupt_ms, s.cost_ms
        st.engine_ms = deque(s.engine_ms, maxlen=st.engine_ms.maxlen)
        st.out_times_ns = deque(s.out_times_ns, maxlen=st.out_times_ns.maxlen)
        self._failed = s.failed

    def deliver(self, event: m.Event) -> None:
        if isinstance(event, m.FrameReady) and self.output_ring is not None:
            with self._rings_lock:
                if self._closed:
                    return
                frame = self.output_ring.take(self._last_out)
                if frame is not None:
                    with frame:
                        self._last_out = frame.seq
                        self._publish(frame.pixels, frame.pts, frame.seq, frame.stamps)
        elif isinstance(event, m.TalkAudio) and self.playout is not None:
            self.playout.push(event.pcm)
        elif isinstance(event, m.JpegFrame) and self.send_frame is not None:
            self.send_frame(event.header, event.jpeg)
        elif isinstance(event, m.JobEvent) and self.on_event is not None:
            self._loop.call_soon_threadsafe(self._event, event.event)

    def _event(self, event: ServerEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)


MAX_HELD_S = 0.2  # audio held back while a chunk is unanswered (see RemoteSpeech)


def _mouth_frames(reply: m.Reply) -> list[MouthFrame]:
    """A speech request's reply → its mouth frames, or the error it carries (as the local generator raises)."""
    if reply.code == "buffer_full":
        raise BufferFull(reply.error)
    if reply.error:
        raise InputError(reply.error)
    return list(reply.frames)


class RemoteSpeech:
    """Speech for a talking head in a worker process (the audio model runs there).

    While an audio chunk is unanswered, later ones wait here and go together once it is answered: one
    message and one wake-up of each process for all of them instead of one per 20 ms chunk. An idle worker
    answers in about a millisecond, so chunks wait only while it is busy rendering, when it could not have
    taken them in sooner; past capacity that per-chunk traffic was most of what a session cost the front.
    At most :data:`MAX_HELD_S` of audio waits: beyond it chunks go anyway, so a worker that stopped reading
    still fills its outbox and is found hung."""

    def __init__(self, job: RemoteJob, fps: float, lookahead_s: float) -> None:
        self._job = job
        self.fps = fps
        self.lookahead_s = lookahead_s
        self._unanswered = 0  # audio chunks sent and not yet answered
        self._held: list[tuple[np.ndarray, int, asyncio.Future[list[MouthFrame]]]] = []
        self._held_samples = 0  # audio held (one rate: a new rate sends what was held)
        self._loop: asyncio.AbstractEventLoop | None = None

    def _ask(self, make: Callable[[int], m.Command]) -> asyncio.Future[list[MouthFrame]]:
        """Send the command now (the pipe keeps the order); the reply is checked when it comes."""
        return asyncio.ensure_future(self._answer(asyncio.wrap_future(self._job.handle.request(make))))

    @staticmethod
    async def _answer(pending: asyncio.Future[m.Reply]) -> list[MouthFrame]:
        return _mouth_frames(await pending)

    def push(self, pcm: np.ndarray, sample_rate: int) -> asyncio.Future[list[MouthFrame]]:
        self._loop = asyncio.get_running_loop()
        answer: asyncio.Future[list[MouthFrame]] = self._loop.create_future()
        if self._held and self._held[0][1] != sample_rate:
            self._send_held()  # a batch has one rate
        self._held.append((pcm, sample_rate, answer))
        self._held_samples += len(pcm)
        if not self._unanswered or self._held_samples >= MAX_HELD_S * sample_rate:
            self._send_held()
        return answer

    def end(self) -> asyncio.Future[list[MouthFrame]]:
        self._send_held()  # the pipe keeps the order: held audio first
        return self._ask(lambda r: m.EndSegment(self._job.name, r))

    def interrupt(self) -> asyncio.Future[None]:
        self._send_held()
        return asyncio.ensure_future(self._interrupted(self._ask(lambda r: m.Interrupt(self._job.name, r))))

    def _send_held(self) -> None:
        held, self._held, self._held_samples = self._held, [], 0
        if not held:
            return
        futures = self._job.handle.request_audio(self._job.name, [(pcm, rate) for pcm, rate, _ in held])
        for (_, _, answer), future in zip(held, futures, strict=True):
            self._unanswered += 1
            future.add_done_callback(functools.partial(self._reply_came, answer))

    def _reply_came(self, answer: asyncio.Future[list[MouthFrame]], done: Future[m.Reply]) -> None:
        """Any thread: hand the reply to the event loop (gone at shutdown: nobody waits any more)."""
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._answered, done, answer)
        except RuntimeError:
            pass

    def _answered(self, done: Future[m.Reply], answer: asyncio.Future[list[MouthFrame]]) -> None:
        """A chunk's reply (on the event loop): settle its answer; the last one out sends what was held."""
        self._unanswered -= 1
        if not answer.done():
            if done.cancelled():
                answer.cancel()
            else:
                try:
                    answer.set_result(_mouth_frames(done.result()))
                except Exception as exc:  # the worker's death, or the error the reply carries
                    answer.set_exception(exc)
                    answer.exception()  # seen here: its socket may be gone (the worker died), nobody may look
        if not self._unanswered:
            self._send_held()

    async def _interrupted(self, pending: asyncio.Future[list[MouthFrame]]) -> None:
        await pending
        if self._job.playout is not None:
            self._job.playout.clear()

    def set_emotion(self, name: str, intensity: float) -> None:
        """Checked here, where the caller can be told (the worker does not answer this command)."""
        self._job.handle.send(m.SetEmotion(self._job.name, *check_emotion(name, intensity)))


class WorkerPool:
    """``count`` worker processes with ``threads`` engine threads each; restarts the ones that die."""

    def __init__(self, config: EngineConfig, count: int, threads: int = 1, metrics: ServerMetrics | None = None
                 ) -> None:
        self._config = config
        self._metrics = metrics or ServerMetrics.create()
        self._threads = threads
        self.handles: list[WorkerHandle] = []
        self.restarts = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._count = count

    async def start(self) -> None:
        """Start every worker (blocking spawns run off the loop, all at once)."""
        self._loop = asyncio.get_running_loop()
        self.handles = [self._spawn(i) for i in range(self._count)]
        await asyncio.gather(*(self._loop.run_in_executor(None, h.wait_ready) for h in self.handles))

    def _spawn(self, index: int) -> WorkerHandle:
        return WorkerHandle(index, self._config, self._threads, self._died, self._metrics)

    def _died(self, handle: WorkerHandle) -> None:
        """Reader thread: a worker ended. Its sessions fail (the reaper ends them); a new process replaces it."""
        if self._closing or self._loop is None:
            return
        log.error("engine worker %d (pid %s) died; %d sessions end; restarting it", handle.index, handle.pid,
                  len(handle.jobs))
        self._loop.call_soon_threadsafe(self._restart, handle)

    def _restart(self, handle: WorkerHandle) -> None:
        if self._closing or handle not in self.handles:
            return
        index = self.handles.index(handle)
        replacement = self._spawn(handle.index)
        self.handles[index] = replacement
        self.restarts += 1
        assert self._loop is not None
        self._loop.run_in_executor(None, handle.process.wait, 5.0)  # reap the dead process

    @property
    def alive(self) -> list[WorkerHandle]:
        return [h for h in self.handles if h.alive and h._ready.is_set()]

    @property
    def degraded(self) -> bool:
        return len(self.alive) < self._count

    @property
    def capacity(self) -> float:
        """Cores of engine work the pool can do (alive workers × threads)."""
        return float(len(self.alive) * self._threads)

    @property
    def load(self) -> float:
        return sum(h.load for h in self.alive)

    def least_loaded(self) -> WorkerHandle:
        alive = self.alive
        if not alive:
            raise WorkerDied("no engine worker is running (they are restarting); try again in a few seconds")
        # By the demand of the jobs placed, not by the busy cores last reported: sessions opened together
        # would all go to whichever worker happened to report less (their load shows only later).
        return min(alive, key=lambda h: (sum(job.demand for job in list(h.jobs.values())), len(h.jobs)))

    async def open(self, kind: str, job_id: str, portrait: Portrait, fps: float, audio_rate: int,
                   clock: Clock, metrics: ServerMetrics, input_shape: tuple[int, int] | None,
                   output_shape: tuple[int, int] | None, playout: AudioPlayout | None) -> RemoteJob:
        """Place a job on the least-loaded worker and wait until it runs there."""
        assert self._loop is not None
        handle = self.least_loaded()
        loop = self._loop
        input_ring = SharedFrameRing.create(*input_shape) if input_shape else None
        output_ring = SharedFrameRing.create(*output_shape) if output_shape else None
        job = RemoteJob(kind, job_id, handle, clock, metrics, loop, input_ring, output_ring, playout, fps)
        handle.jobs[job_id] = job  # counted on this worker at once, so concurrent openings spread out
        handle.opened_since_stats += 1
        try:
            sent = handle.portraits.get(portrait.id)
            if sent is None:  # the first job with this portrait here sends it; jobs opened meanwhile wait
                # Pickling a portrait is megabytes of work: off the event loop.
                sent = handle.portraits[portrait.id] = asyncio.ensure_future(
                    loop.run_in_executor(None, handle.send, m.AddPortrait(portrait.id, portrait.source)))
            await asyncio.shield(sent)  # one opener given up must not cancel the others' portrait

            def ref(ring: SharedFrameRing | None) -> m.RingRef | None:
                return None if ring is None else m.RingRef(ring.name, ring.max_height, ring.max_width)

            handle.send(m.OpenJob(job_id, kind, portrait.id, ref(input_ring), ref(output_ring), fps, audio_rate))
            await job.wait_opened()
        except BaseException:
            await loop.run_in_executor(None, job.close)
            raise
        return job

    async def aclose(self) -> None:
        self._closing = True
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(None, h.shutdown) for h in self.handles))
