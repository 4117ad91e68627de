"""Placing sessions on engine workers: by the demand of the jobs already placed there, so sessions opened
together spread out even before their workers report any load."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from livepuppet.engine.config import EngineConfig
from livepuppet.streaming.server.engine_job import MIN_COST_FRAMES, UNMEASURED_CORES, JobStats
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


def test_a_jobs_cost_is_what_its_steps_cost_per_frame_including_steps_without_a_frame() -> None:
    # A talking head: a 4 ms render gives a frame; two 1 ms speech steps between frames give none.
    stats = JobStats()
    assert stats.cores_needed(25.0) == UNMEASURED_CORES
    for _ in range(MIN_COST_FRAMES + 2):
        stats.frames_out += 1
        stats.charge(4_000_000)
        stats.charge(1_000_000)
        stats.charge(1_000_000)
    assert abs(stats.cost_ms - 6.0) < 1e-6
    stats.engine_ms.append(40.0)  # a wall time inflated by contention no longer decides
    assert abs(stats.cores_needed(25.0) - 0.15) < 1e-6


def test_the_wall_time_per_frame_decides_until_the_cost_is_measured() -> None:
    stats = JobStats()
    stats.engine_ms.extend([8.0, 8.0, 12.0])
    stats.frames_out = MIN_COST_FRAMES - 1
    stats.charge(1_000_000)
    assert stats.cost_ms == 0.0 and abs(stats.cores_needed(25.0) - 0.2) < 1e-6
