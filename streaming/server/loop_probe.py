"""How late the server's event loop runs. Every session's frames, WebRTC packets and WebSocket messages wait
on this one loop, so a stall (a long cycle collection, blocking work on the loop) reaches all of them at once:
a frozen picture for every viewer, not a slow engine for one."""

from __future__ import annotations

import asyncio
import contextlib

from prometheus_client import Histogram

PROBE_INTERVAL_S = 0.05  # often enough to see a one-frame stall at 25 fps, cheap enough to never matter


class LoopProbe:
    """Owns one task that sleeps ``interval_s`` again and again and records how much later than asked it woke
    (``livepuppet_loop_lag_seconds``)."""

    def __init__(self, histogram: Histogram, interval_s: float = PROBE_INTERVAL_S) -> None:
        self._histogram = histogram
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="livepuppet-loop-probe")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self._interval_s
            await asyncio.sleep(self._interval_s)
            self._histogram.observe(max(0.0, loop.time() - due))
