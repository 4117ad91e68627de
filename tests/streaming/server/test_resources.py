"""Engine capacity as admission sees it: with worker processes, the cores the front itself uses (WebRTC
decoding and encoding, the WebSocket) are not there for the engines."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from livepuppet.engine.config import EngineConfig
from livepuppet.streaming.server.resources import EngineResources


@dataclass
class Pool:
    capacity: float

    async def aclose(self) -> None:
        return None


class CpuClock:
    def __init__(self) -> None:
        self.ns = 0

    def __call__(self) -> int:
        return self.ns


def test_worker_capacity_leaves_out_what_the_front_uses() -> None:
    cpu = CpuClock()
    resources = EngineResources(EngineConfig(), cpu_clock=cpu, cores=2)
    try:
        resources.pool = Pool(capacity=2.0)  # type: ignore[assignment]
        resources.sample_load(1_000_000_000)
        assert resources.capacity == 2.0  # nothing measured yet
        cpu.ns += 600_000_000  # the front used 0.6 of a core over the next second
        resources.sample_load(2_000_000_000)
        assert abs(resources.front_load - 0.6) < 1e-9 and abs(resources.capacity - 1.4) < 1e-9
        cpu.ns += 3_000_000_000  # more than the machine's cores: no negative capacity
        resources.sample_load(3_000_000_000)
        assert resources.capacity == 0.0
        resources.pool = Pool(capacity=1.0)  # type: ignore[assignment]
        cpu.ns += 200_000_000
        resources.sample_load(4_000_000_000)
        assert abs(resources.capacity - 1.0) < 1e-9  # one worker's core is the bound, not the idle second core
    finally:
        asyncio.run(resources.aclose())
