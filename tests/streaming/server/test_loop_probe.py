"""The loop probe records how late the event loop ran: a loop blocked for 0.25 s shows as one late wake-up
of at least 0.2 s in ``livepuppet_loop_lag_seconds``; it stops with its owner."""

from __future__ import annotations

import asyncio
import time

from livepuppet.streaming.server.loop_probe import LoopProbe
from livepuppet.streaming.server.metrics import ServerMetrics


def test_a_blocked_loop_is_recorded_as_late() -> None:
    metrics = ServerMetrics.create()

    def probes() -> list[asyncio.Task[object]]:
        return [t for t in asyncio.all_tasks() if t.get_name() == "livepuppet-loop-probe" and not t.done()]

    async def run() -> tuple[int, int]:
        probe = LoopProbe(metrics.loop_lag, interval_s=0.01)
        probe.start()
        await asyncio.sleep(0.1)
        time.sleep(0.25)  # noqa: ASYNC251  # blocking the loop on purpose: every session would wait this long
        await asyncio.sleep(0.05)
        running = len(probes())
        await probe.aclose()
        return running, len(probes())

    assert asyncio.run(run()) == (1, 0)  # one task, gone with its owner
    total = metrics.registry.get_sample_value("livepuppet_loop_lag_seconds_count")
    on_time = metrics.registry.get_sample_value("livepuppet_loop_lag_seconds_bucket", {"le": "0.2"})
    assert total is not None and on_time is not None
    assert total - on_time == 1 and total >= 5
