"""An engine worker process: its own engine (MediaPipe drivers, audio model, renderers) and engine threads,
hosting the jobs of the sessions the front placed on it. Commands arrive on a pipe; pixels cross in
shared-memory rings the front created; events go back on the same pipe.

Started as a fresh interpreter (never forked: the front runs threads and an event loop), with a fixed
thread budget set in its environment before NumPy, OpenCV or ONNX Runtime load, so N workers on N cores do
not oversubscribe them. A job that fails is reported in the stats like in one process; if the
whole process dies, the front ends its sessions and starts a new one.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TypeAlias

import numpy as np
from livepuppet.engine.clock import MonotonicClock
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.heap import freeze_startup_heap
from livepuppet.engine.render.mesh_renderer import warm_renderer
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.speech.generator import SEGMENT_END, AudioChunk, BufferFull, TalkingHeadGenerator
from livepuppet.engine.speech.mouth_model import AudioMouthModel
from livepuppet.errors import LivepuppetError
from livepuppet.streaming.protocol import FrameHeader, ServerEvent
from livepuppet.streaming.server import worker_messages as m
from livepuppet.streaming.server.driver_pool import DriverPool
from livepuppet.streaming.server.engine_job import EngineJob
from livepuppet.streaming.server.engine_worker import EngineWorker
from livepuppet.streaming.server.metrics import FigureLog
from livepuppet.streaming.server.puppet_job import EchoJob, PuppetJob
from livepuppet.streaming.server.talk_job import FramesJob, TalkJob
from livepuppet.streaming.shared_ring import SharedFrameRing

log = logging.getLogger(__name__)

STATS_INTERVAL_S = 0.5
WORKER_NICE = 5  # engine worker processes run at a lower CPU priority than the front


class _Link:
    """The worker's end of the pipe: sends from any thread, one at a time."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def send(self, message: m.Event) -> None:
        with self._lock:
            try:
                self._conn.send(message)
            except (BrokenPipeError, EOFError, OSError):  # the front is gone; the command loop ends soon
                pass


class _RemotePlayout:
    """The front's audio track buffer as a talk job sees it: pushes go over the pipe; ``queued_s`` is what
    the front reported with the tick."""

    def __init__(self, link: _Link, job_id: str) -> None:
        self._link = link
        self._job_id = job_id
        self.queued_s = 0.0

    def push(self, samples: np.ndarray) -> None:
        self._link.send(m.TalkAudio(self._job_id, np.asarray(samples, np.float32)))

    def clear(self) -> None:
        """The front clears its own buffer on interrupt."""


class _NotifyingRing:
    """A job's output: the shared ring, plus a FrameReady so the front relays the frame at once."""

    def __init__(self, ring: SharedFrameRing, link: _Link, job_id: str) -> None:
        self._ring = ring
        self._link = link
        self._job_id = job_id

    def write(self, pixels: np.ndarray, pts: int, seq: int, stamps: tuple[tuple[str, int], ...] = ()) -> bool:
        dropped = self._ring.write(pixels, pts, seq, stamps)
        self._link.send(m.FrameReady(self._job_id))
        return dropped


SpeechCommand: TypeAlias = "m.PushAudio | m.EndSegment | m.Interrupt"


MAX_COALESCED = 25  # audio chunks at most taken in as one (0.5 s of 20 ms chunks)


class SpeechInbox:
    """A talking head's speech commands, taken in on the engine thread between frames (an engine job of its
    own): the audio model then never competes with rendering for the interpreter lock, and the receiving
    thread only queues. Commands run in arrival order; each gets its reply.

    Audio chunks that queued up while the engine rendered (a loaded worker) are taken in as one: the model's
    cost is mostly per call (a 20 ms chunk costs about as much as 40 ms), so a busy worker spends less on
    each session's speech exactly when it has least to spare. The mouth frames go with the last reply."""

    def __init__(self, job: EngineJob, generator: TalkingHeadGenerator, link: _Link) -> None:
        self.name = f"{job.name}/speech"
        self._job = job
        self._generator = generator
        self._link = link
        self._queue: deque[tuple[SpeechCommand, int]] = deque()  # with when each came (generator's clock)

    def put(self, command: SpeechCommand) -> None:
        self._queue.append((command, self._generator.now_ns()))

    def pending(self) -> bool:
        return bool(self._queue)

    def step(self) -> None:
        replies: list[m.Reply] = []
        while self._queue:
            command, came_ns = self._queue.popleft()
            if not isinstance(command, m.PushAudio):
                replies.append(self._apply(command, came_ns))
                continue
            batch = [(command, came_ns)]
            while (len(batch) < MAX_COALESCED and self._queue and isinstance(nxt := self._queue[0][0], m.PushAudio)
                   and nxt.sample_rate == command.sample_rate):
                batch.append(self._queue.popleft())  # type: ignore[arg-type]
            replies += self._push(batch)
        if len(replies) == 1:
            self._link.send(replies[0])
        elif replies:
            self._link.send(m.Replies(tuple(replies)))

    def _push(self, batch: list[tuple[m.PushAudio, int]]) -> list[m.Reply]:
        """Replies to ``batch``, its audio taken in by one call; one by one if that call refuses it (the
        generator refuses before changing any state, so each chunk then gets the answer it would alone)."""
        if len(batch) == 1:
            return [self._apply(*batch[0])]
        last, came_ns = batch[-1]
        try:
            pcm = np.concatenate([c.pcm for c, _ in batch])
            frames = self._generator.push_audio(AudioChunk(pcm, last.sample_rate, came_ns))
        except LivepuppetError:
            return [self._apply(c, t) for c, t in batch]
        return [*(m.Reply(c.job_id, c.request, ()) for c, _ in batch[:-1]),
                m.Reply(last.job_id, last.request, tuple(frames))]

    def charge(self, cost_ns: int) -> None:
        self._job.charge(cost_ns)  # the audio analysis is part of what the talking head costs

    def _apply(self, command: SpeechCommand, came_ns: int) -> m.Reply:
        gen = self._generator
        try:
            if isinstance(command, m.PushAudio):
                frames = gen.push_audio(AudioChunk(command.pcm, command.sample_rate, came_ns))
            elif isinstance(command, m.EndSegment):
                frames = gen.push_audio(SEGMENT_END)
            else:
                gen.clear_buffer()
                frames = []
            return m.Reply(command.job_id, command.request, tuple(frames))
        except BufferFull as exc:
            return m.Reply(command.job_id, command.request, error=str(exc), code="buffer_full")
        except LivepuppetError as exc:
            return m.Reply(command.job_id, command.request, error=str(exc), code="bad_audio")


@dataclass
class _Hosted:
    job: EngineJob
    generator: TalkingHeadGenerator | None
    rings: list[SharedFrameRing]
    playout: _RemotePlayout | None = None
    speech: SpeechInbox | None = None


class WorkerHost:
    """Everything one worker process runs."""

    def __init__(self, conn: Connection, config: EngineConfig, threads: int) -> None:
        self._conn = conn
        self._link = _Link(conn)
        self._config = config
        self._clock = MonotonicClock()
        self._figures = FigureLog()  # the jobs' metrics: the front replays them into the registry it exports
        # One engine thread: the process's CPU time during a step is what the step cost (its MediaPipe and
        # ONNX Runtime threads included), however many other processes share the cores.
        cost_clock = time.process_time_ns if threads == 1 else time.monotonic_ns
        self._worker = EngineWorker(threads, name="livepuppet-engine", cost_clock=cost_clock)
        self._drivers = DriverPool(config, config.server.max_sessions)
        self._model: AudioMouthModel | None = None
        self._portraits: dict[str, PreparedSource] = {}
        self._jobs: dict[str, _Hosted] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def serve(self, loaded: Callable[[], object] | None = None) -> None:
        """Answer commands until the front goes or says :class:`~m.Shutdown`; ``loaded`` runs once the model
        and renderer are warm, before the worker says it is ready."""
        stats = threading.Thread(target=self._report, name="livepuppet-worker-stats", daemon=True)
        stats.start()
        self._speech_model()  # load once before taking sessions: the first talking head starts at once
        warm_renderer(self._config)
        if loaded is not None:
            loaded()
        self._link.send(m.WorkerReady(os.getpid()))
        try:
            while True:
                try:
                    command = self._conn.recv()
                except (EOFError, OSError):  # the front went away: stop
                    break
                if isinstance(command, m.Shutdown):
                    break
                self._dispatch(command)
        finally:
            self._stop.set()
            for job_id in list(self._jobs):
                self._close(job_id)
            self._worker.close()
            self._drivers.close()

    def _dispatch(self, command: m.Command) -> None:
        if isinstance(command, m.AddPortrait):
            self._portraits[command.key] = command.source
        elif isinstance(command, m.OpenJob):
            try:
                self._open(command)
                self._link.send(m.JobOpened(command.job_id))
            except (LivepuppetError, OSError, ValueError) as exc:
                self._link.send(m.JobOpened(command.job_id, error=f"{type(exc).__name__}: {exc}"))
        elif isinstance(command, m.CloseJob):
            self._close(command.job_id)
        else:
            hosted = self._jobs.get(getattr(command, "job_id", ""))
            if hosted is not None:
                try:
                    self._job_command(hosted, command)
                except LivepuppetError as exc:  # one session's bad command must not stop the whole worker
                    log.warning("job %s: %s refused: %s", hosted.job.name, type(command).__name__, exc)

    def _job_command(self, hosted: _Hosted, command: m.Command) -> None:
        job, gen = hosted.job, hosted.generator
        if isinstance(command, m.InputFrame):
            self._worker.notify()
        elif isinstance(command, m.Tick) and isinstance(job, TalkJob) and hosted.playout is not None:
            hosted.playout.queued_s = command.queued_s
            job.tick()
            self._worker.notify()
        elif isinstance(command, m.Control):
            job.control(command.controls)
        elif isinstance(command, m.FrameSent) and isinstance(job, FramesJob):
            job.sent()
            self._worker.notify()
        elif isinstance(command, m.SetMaxLag) and isinstance(job, FramesJob):
            job.set_max_lag(command.seconds)
        elif isinstance(command, m.SetEmotion) and gen is not None:
            gen.set_emotion(command.emotion, command.intensity)
        elif isinstance(command, (m.PushAudio, m.EndSegment, m.Interrupt)) and hosted.speech is not None:
            hosted.speech.put(command)
            self._worker.notify()
        elif isinstance(command, m.PushAudioBatch) and hosted.speech is not None:
            for chunk in command.chunks:
                hosted.speech.put(chunk)
            self._worker.notify()

    def _speech_model(self) -> AudioMouthModel:
        if self._model is None:
            self._model = AudioMouthModel.load(self._config.speech.model or None, 1)
        return self._model

    def _open(self, command: m.OpenJob) -> None:
        source = self._portraits.get(command.portrait)
        if source is None:  # the front sends a portrait before any job that uses it
            raise LivepuppetError(f"portrait {command.portrait!r} was never sent to this worker")
        rings: list[SharedFrameRing] = []
        try:
            job, gen, playout = self._make_job(command, source, rings)
        except BaseException:
            for ring in rings:
                ring.detach()
            raise
        speech = None if gen is None else SpeechInbox(job, gen, self._link)
        with self._lock:
            self._jobs[command.job_id] = _Hosted(job, gen, rings, playout, speech)
        if speech is not None:
            self._worker.add(speech)
        self._worker.add(job)

    def _make_job(self, command: m.OpenJob, source: PreparedSource, rings: list[SharedFrameRing]
                  ) -> tuple[EngineJob, TalkingHeadGenerator | None, _RemotePlayout | None]:
        def attach(ref: m.RingRef | None) -> SharedFrameRing | None:
            if ref is None:
                return None
            ring = SharedFrameRing.attach(ref.name, ref.max_height, ref.max_width)
            rings.append(ring)
            return ring

        input_ring, output_ring = attach(command.input), attach(command.output)
        job_id, kind = command.job_id, command.kind
        gen: TalkingHeadGenerator | None = None
        playout: _RemotePlayout | None = None
        job: EngineJob
        if kind in ("puppet", "echo"):
            assert input_ring is not None
            if kind == "puppet":
                job = PuppetJob(job_id, source, self._config, self._clock, self._figures, input_ring,
                                self._drivers)
            else:
                job = EchoJob(job_id, self._clock, self._figures, input_ring)
        else:
            gen = TalkingHeadGenerator(source, self._config, self._speech_model(), fps=command.fps,
                                       audio_rate=command.audio_rate, clock=self._clock)
            if kind == "talk":
                playout = _RemotePlayout(self._link, job_id)
                talk = TalkJob(job_id, gen, playout, self._clock, self._figures)
                talk.on_event = lambda event: self._event(job_id, event)
                job = talk
            else:
                job = FramesJob(job_id, gen, self._config.render.crop_size, self._clock, self._figures,
                                lambda header, jpeg: self._jpeg(job_id, header, jpeg),
                                lambda event: self._event(job_id, event), self._config.speech.frames_max_lag_s)
        if output_ring is not None:
            job.add_output(_NotifyingRing(output_ring, self._link, job_id))
        return job, gen, playout

    def _jpeg(self, job_id: str, header: FrameHeader, jpeg: bytes) -> None:
        self._link.send(m.JpegFrame(job_id, header, jpeg))

    def _event(self, job_id: str, event: ServerEvent) -> None:
        self._link.send(m.JobEvent(job_id, event))

    def _close(self, job_id: str) -> None:
        with self._lock:
            hosted = self._jobs.pop(job_id, None)
        if hosted is None:
            return
        hosted.job.close_input()
        if hosted.speech is not None:
            self._worker.remove(hosted.speech)
        self._worker.remove(hosted.job)
        hosted.job.close()
        for ring in hosted.rings:
            ring.detach()

    def _report(self) -> None:
        last_busy, last_t = self._worker.busy_ns, time.monotonic_ns()
        while not self._stop.wait(STATS_INTERVAL_S):
            busy, now = self._worker.busy_ns, time.monotonic_ns()
            load = (busy - last_busy) / max(1, now - last_t)
            last_busy, last_t = busy, now
            with self._lock:
                jobs = {job_id: _snapshot(h.job) for job_id, h in self._jobs.items()}
            self._link.send(m.WorkerStats(busy=load, jobs=jobs, figures=self._figures.take()))


def _snapshot(job: EngineJob) -> m.JobStatsSnapshot:
    s = job.stats
    return m.JobStatsSnapshot(frames_out=s.frames_out, frames_skipped=s.frames_skipped, errors=s.errors,
                              face_found=s.face_found, last_error=s.last_error, speech_start_ms=s.speech_start_ms,
                              interrupt_ms=s.interrupt_ms, engine_ms=tuple(s.engine_ms),
                              out_times_ns=tuple(s.out_times_ns), cost_ms=s.cost_ms, failed=job.failed)


@dataclass(frozen=True, slots=True)
class WorkerInit:
    """The first message a worker receives: how to run."""

    config: EngineConfig
    threads: int
    log_level: int


def worker_main(conn: Connection) -> None:
    """Run a worker on ``conn`` (its first message is a :class:`WorkerInit`)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the front shuts us down
    init: WorkerInit = conn.recv()
    logging.basicConfig(level=init.log_level, format="%(asctime)s worker %(process)d %(name)s: %(message)s")
    try:
        import cv2

        cv2.setNumThreads(init.threads)  # the process's share of the cores, not all of them
    except ImportError:  # pragma: no cover - opencv is a core dependency
        pass
    # Compute yields to the front: its loop answers signalling, keep-alives and audio pacing, which must
    # not wait behind rendering when every core is busy.
    os.nice(WORKER_NICE)
    WorkerHost(conn, init.config, init.threads).serve(loaded=freeze_startup_heap)


if __name__ == "__main__":  # started by worker_pool.WorkerHandle: python -m ... FD
    import sys
    from multiprocessing.connection import Connection as _Connection

    worker_main(_Connection(int(sys.argv[1])))
