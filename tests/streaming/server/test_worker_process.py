"""A worker process's command loop, run on a thread over a pipe: a job it cannot open is answered with an
error, and the worker goes on serving."""

from __future__ import annotations

import threading
from multiprocessing import Pipe
from multiprocessing.connection import Connection

import pytest
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.source import PreparedSource
from livepuppet.streaming.server import worker_messages as m
from livepuppet.streaming.server.worker_process import WorkerHost


def next_of(conn: Connection, kind: type, timeout: float = 60.0) -> object:
    """The next message of type ``kind`` (stats come every half second meanwhile)."""
    while conn.poll(timeout):
        message = conn.recv()
        if isinstance(message, kind):
            return message
    pytest.fail(f"no {kind.__name__} within {timeout} s")


def test_a_job_for_an_unknown_portrait_is_refused_and_the_worker_serves_on(config: EngineConfig,
                                                                           prepared: PreparedSource) -> None:
    front, worker = Pipe()
    host = WorkerHost(worker, config, threads=1)
    thread = threading.Thread(target=host.serve, daemon=True)
    thread.start()
    try:
        next_of(front, m.WorkerReady)
        front.send(m.OpenJob("a", "frames", "never-sent", None, None, 25.0, 16_000))
        refused = next_of(front, m.JobOpened)
        assert isinstance(refused, m.JobOpened) and refused.job_id == "a"
        assert refused.error is not None and "never-sent" in refused.error and "never sent" in refused.error
        front.send(m.AddPortrait("p", prepared))
        front.send(m.OpenJob("b", "frames", "p", None, None, 25.0, 16_000))
        opened = next_of(front, m.JobOpened)
        assert isinstance(opened, m.JobOpened) and opened.job_id == "b" and not opened.error
        front.send(m.CloseJob("b"))
    finally:
        front.send(m.Shutdown())
        thread.join(30)
    assert not thread.is_alive()
