"""What every session of one server shares, created once and closed once: the engine (worker threads in this
process, or engine worker processes), the MediaPipe driver pool, the audio model, fixed thread pools for
conversion and blocking work, and the load figures admission decides on."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from livepuppet.engine.config import EngineConfig, machine_cores
from livepuppet.engine.render.mesh_renderer import warm_renderer
from livepuppet.engine.speech.mouth_model import AudioMouthModel
from livepuppet.streaming.server.driver_pool import DriverPool
from livepuppet.streaming.server.engine_worker import EngineWorker
from livepuppet.streaming.server.metrics import ServerMetrics
from livepuppet.streaming.server.worker_pool import WorkerPool

CONVERT_THREADS = 2  # RGB conversion of received frames
BLOCKING_THREADS = 6  # the loop's default executor: aiortc's encoders/decoders, portrait preparation
INGEST_THREADS = 2  # audio model inference on speech received over the WebSocket


def started_pool(threads: int, name: str) -> ThreadPoolExecutor:
    """A thread pool whose threads all exist from the start (pools otherwise grow lazily), so the server's
    thread count does not drift with load."""
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
    barrier = threading.Barrier(threads)
    for future in [pool.submit(barrier.wait) for _ in range(threads)]:
        future.result()
    return pool


class EngineResources:
    """Owned by the server app: :meth:`start` on the event loop at start-up, :meth:`aclose` at shutdown."""

    def __init__(self, config: EngineConfig, metrics: ServerMetrics | None = None,
                 cpu_clock: Callable[[], int] = time.process_time_ns, cores: int | None = None) -> None:
        self._config = config
        self._cpu_clock = cpu_clock  # this process's CPU time: what the front itself uses
        self._cores = machine_cores() if cores is None else cores
        self.worker = EngineWorker(config.server.engine_workers)
        self.drivers = DriverPool(config, config.server.max_sessions)
        self.convert = started_pool(CONVERT_THREADS, "livepuppet-convert")
        self.blocking = started_pool(BLOCKING_THREADS, "livepuppet-blocking")
        self.ingest = started_pool(INGEST_THREADS, "livepuppet-audio")
        processes = config.server.worker_processes
        self.pool = WorkerPool(config, processes, config.server.engine_workers, metrics) if processes else None
        self._speech_model: AudioMouthModel | None = None
        self._model_lock = asyncio.Lock()
        self._busy_ns, self._busy_at, self._cpu_ns = 0, 0, 0
        self.local_load = 0.0  # cores the in-process engine threads were busy, last sample
        self.front_load = 0.0  # cores this process used, last sample (with worker processes: the front's work)

    async def start(self) -> None:
        # Encoders, decoders and portrait preparation run in the loop's default executor: the fixed pool.
        loop = asyncio.get_running_loop()
        loop.set_default_executor(self.blocking)
        if self.pool is not None:
            await self.pool.start()  # each worker warms its own renderer; this process renders nothing
        else:
            await loop.run_in_executor(None, warm_renderer, self._config)

    def sample_load(self, now_ns: int) -> None:
        """Update :attr:`local_load` and :attr:`front_load` (called once a second)."""
        busy, cpu = self.worker.busy_ns, self._cpu_clock()
        if self._busy_at:
            span = max(1, now_ns - self._busy_at)
            self.local_load = (busy - self._busy_ns) / span
            self.front_load = (cpu - self._cpu_ns) / span
        self._busy_ns, self._busy_at, self._cpu_ns = busy, now_ns, cpu

    @property
    def capacity(self) -> float:
        """Cores of engine work available: the worker processes' (no more than the cores the front leaves
        them: its WebRTC decoding and encoding runs on the same cores), or this process's engine threads."""
        if self.pool is not None:
            return max(0.0, min(self.pool.capacity, self._cores - self.front_load))
        return float(self._config.server.engine_workers)

    @property
    def load(self) -> float:
        """Cores of engine work being done now (measured)."""
        return self.pool.load if self.pool is not None else self.local_load

    async def speech_model(self) -> AudioMouthModel:
        """The audio→mouth model, loaded once (blocking load off the loop)."""
        async with self._model_lock:
            if self._speech_model is None:
                loop = asyncio.get_running_loop()
                path = self._config.speech.model or None
                self._speech_model = await loop.run_in_executor(None, AudioMouthModel.load, path, 1)
        return self._speech_model

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        if self.pool is not None:
            await self.pool.aclose()
        await loop.run_in_executor(None, self.worker.close)
        await loop.run_in_executor(None, self.drivers.close)
        self.convert.shutdown(wait=True)
        self.ingest.shutdown(wait=True)
