"""The shared engine worker: fair round robin across sessions, survives a failing job, detaches cleanly.
Waits are on events the jobs set (never a fixed sleep standing in for "enough time has passed")."""

from __future__ import annotations

import threading
import time

from livepuppet.streaming.server.engine_worker import EngineWorker


class CountingJob:
    """Always has work; each step takes a little time; ``reached`` is set after ``target`` steps."""

    def __init__(self, name: str, step_s: float = 0.002, fail: bool = False, target: int = 30) -> None:
        self.name = name
        self.steps = 0
        self._step_s = step_s
        self._fail = fail
        self._target = target
        self.running = threading.Event()
        self.reached = threading.Event()

    def pending(self) -> bool:
        return True

    def step(self) -> None:
        self.running.set()
        self.steps += 1
        if self.steps >= self._target:
            self.reached.set()
        time.sleep(self._step_s)  # stands in for engine work
        if self._fail:
            raise RuntimeError("boom")


def test_sessions_share_the_worker_fairly() -> None:
    worker = EngineWorker(threads=1)
    jobs = [CountingJob(f"s{i}") for i in range(3)]
    for job in jobs:
        worker.add(job)
    assert all(job.reached.wait(10) for job in jobs)
    for job in jobs:
        worker.remove(job)
    worker.close()
    counts = [job.steps for job in jobs]
    assert min(counts) >= 29 and max(counts) - min(counts) <= 2, counts


def test_a_failing_job_does_not_stop_the_others() -> None:
    worker = EngineWorker(threads=1)
    bad, good = CountingJob("bad", fail=True, target=10), CountingJob("good", target=10)
    worker.add(bad)
    worker.add(good)
    assert bad.reached.wait(10) and good.reached.wait(10)  # the failing job was stepped again and again ...
    worker.remove(bad)
    before = good.steps
    more = CountingJob("probe", target=5)
    worker.add(more)
    assert more.reached.wait(10)
    assert good.steps > before  # ... and the others kept being served
    worker.remove(good)
    worker.close()


def test_remove_waits_for_a_running_step() -> None:
    worker = EngineWorker(threads=1)
    slow = CountingJob("slow", step_s=0.2)
    worker.add(slow)
    assert slow.running.wait(2)
    t0 = time.monotonic()
    worker.remove(slow)
    steps = slow.steps
    assert time.monotonic() - t0 < 1.0
    other = CountingJob("other", target=20)
    worker.add(other)
    assert other.reached.wait(10)  # the worker went on stepping jobs ...
    assert slow.steps == steps, "a removed job was stepped again"  # ... but never the removed one
    worker.close()


def test_idle_worker_sleeps_until_notified() -> None:
    worker = EngineWorker(threads=2)

    class OneShot:
        name = "one"
        has = False
        done = threading.Event()

        def pending(self) -> bool:
            return self.has

        def step(self) -> None:
            self.has = False
            self.done.set()

    job = OneShot()
    worker.add(job)
    assert not job.done.wait(0.05)  # nothing pending: not stepped
    job.has = True
    worker.notify()
    assert job.done.wait(1)
    worker.close()
    assert worker.job_count == 1
