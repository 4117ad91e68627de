"""Placing sessions on engine workers: by the demand of the jobs already placed there, so sessions opened
together spread out even before their workers report any load."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from livepuppet.engine.config import EngineConfig
from livepuppet.streaming.server.engine_job import UNMEASURED_CORES
from livepuppet.streaming.server.worker_pool import WorkerPool


@dataclass
class Job:
    demand: float


@dataclass
class Handle:
    """What placement reads of a worker: liveness, the last reported busy cores, its jobs."""

    busy: float
    jobs: dict[str, Job]
    alive: bool = True
    opened_since_stats: int = 0
    _ready: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._ready.set()

    @property
    def load(self) -> float:
        return self.busy + UNMEASURED_CORES * self.opened_since_stats


def pool_of(*handles: Handle) -> WorkerPool:
    pool = WorkerPool(EngineConfig(), len(handles))
    pool.handles = list(handles)  # type: ignore[arg-type]
    return pool


def test_new_sessions_go_where_the_placed_demand_is_lowest_not_the_reported_load() -> None:
    # Worker 0 runs two measured talking heads; worker 1 has just been given three that have not started
    # yet, and its last report (after they were placed) says it is idle.
    settled = Handle(busy=0.4, jobs={"a": Job(0.2), "b": Job(0.2)})
    fresh = Handle(busy=0.0, jobs={"c": Job(UNMEASURED_CORES), "d": Job(UNMEASURED_CORES), "e": Job(UNMEASURED_CORES)})
    assert pool_of(settled, fresh).least_loaded() is settled


def test_a_burst_of_sessions_is_split_evenly() -> None:
    a, b = Handle(busy=0.0, jobs={}), Handle(busy=0.05, jobs={})
    pool = pool_of(a, b)
    for i in range(10):
        pool.least_loaded().jobs[f"s{i}"] = Job(UNMEASURED_CORES)
    assert (len(a.jobs), len(b.jobs)) == (5, 5)


def test_a_dead_worker_takes_no_sessions() -> None:
    a, b = Handle(busy=0.0, jobs={}, alive=False), Handle(busy=1.5, jobs={"x": Job(1.0)})
    assert pool_of(a, b).least_loaded() is b
