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
        self.charged_ns = 0

    def pending(self) -> bool:
        return True

    def charge(self, cost_ns: int) -> None:
        self.charged_ns += cost_ns

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

        def charge(self, cost_ns: int) -> None:
            pass

    job = OneShot()
    worker.add(job)
    assert not job.done.wait(0.05)  # nothing pending: not stepped
    job.has = True
    worker.notify()
    assert job.done.wait(1)
    worker.close()
    assert worker.job_count == 1


def test_each_step_is_charged_to_its_job_on_the_cost_clock() -> None:
    # A step that waits (as a step preempted by another process does) costs its wall time on the default
    # clock and next to nothing on a CPU clock: the cost that places sessions does not grow with contention.
    for clock, waits_count in ((time.monotonic_ns, True), (time.process_time_ns, False)):
        worker = EngineWorker(threads=1, cost_clock=clock)
        job = CountingJob("waits", step_s=0.01, target=10)
        worker.add(job)
        assert job.reached.wait(10)
        worker.remove(job)
        worker.close()
        waited_ns = job.steps * 0.01e9
        assert (job.charged_ns >= 0.9 * waited_ns) is waits_count, (clock, job.charged_ns, waited_ns)
        assert worker.busy_ns == job.charged_ns
