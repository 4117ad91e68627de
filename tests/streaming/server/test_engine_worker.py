"""The shared engine worker: fair round robin across sessions, survives a failing job, detaches cleanly."""

from __future__ import annotations

import threading
import time

from livepuppet.streaming.server.engine_worker import EngineWorker


class CountingJob:
    """Always has work; each step takes a little time."""

    def __init__(self, name: str, step_s: float = 0.002, fail: bool = False) -> None:
        self.name = name
        self.steps = 0
        self._step_s = step_s
        self._fail = fail
        self.running = threading.Event()

    def pending(self) -> bool:
        return True

    def step(self) -> None:
        self.running.set()
        self.steps += 1
        time.sleep(self._step_s)
        if self._fail:
            raise RuntimeError("boom")


def test_sessions_share_the_worker_fairly() -> None:
    worker = EngineWorker(threads=1)
    jobs = [CountingJob(f"s{i}") for i in range(3)]
    for job in jobs:
        worker.add(job)
    time.sleep(0.4)
    for job in jobs:
        worker.remove(job)
    worker.close()
    counts = [job.steps for job in jobs]
    assert min(counts) > 20 and max(counts) - min(counts) <= 2, counts


def test_a_failing_job_does_not_stop_the_others() -> None:
    worker = EngineWorker(threads=1)
    bad, good = CountingJob("bad", fail=True), CountingJob("good")
    worker.add(bad)
    worker.add(good)
    time.sleep(0.2)
    worker.remove(bad)
    before = good.steps
    time.sleep(0.1)
    assert good.steps > before > 5
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
    time.sleep(0.3)
    assert slow.steps == steps, "a removed job was stepped again"
    assert time.monotonic() - t0 < 1.0
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
    time.sleep(0.05)
    assert not job.done.is_set()
    job.has = True
    worker.notify()
    assert job.done.wait(1)
    worker.close()
    assert worker.job_count == 1
