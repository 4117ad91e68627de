"""The front's side of a talking head in a worker (``RemoteSpeech``): audio chunks that come while one is
unanswered wait and go together in one message when it is answered; every chunk still gets its own answer,
in order; held audio goes first before an end or an interrupt, and at most ``MAX_HELD_S`` of it waits."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from typing import Any

import numpy as np
import pytest
from livepuppet.engine.speech.generator import BufferFull
from livepuppet.engine.speech.mouth_model import MouthFrame
from livepuppet.streaming.server import worker_messages as m
from livepuppet.streaming.server.worker_pool import MAX_HELD_S, RemoteSpeech


class Handle:
    """Stands in for a worker's handle: what was sent, with a future per request to answer by hand."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []  # ("audio", [pcm, …]) or ("command", command)
        self.pending: list[Future[Any]] = []

    def request_audio(self, job_id: str, chunks: list[tuple[np.ndarray, int]]) -> list[Future[Any]]:
        self.sent.append(("audio", [pcm for pcm, _ in chunks]))
        futures = [Future() for _ in chunks]
        self.pending += futures
        return futures

    def request(self, make: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self.sent.append(("command", make(len(self.sent))))
        self.pending.append(future)
        return future


class Job:
    name = "talk"
    playout = None

    def __init__(self) -> None:
        self.handle = Handle()


def frame(t: float) -> MouthFrame:
    return MouthFrame(t=t, viseme=0, probs=np.zeros(15, np.float32), jaw_open=0.1, lip_width=0.0, lip_round=0.0,
                      lip_close=0.0, voiced=1.0)


def chunk(value: int, seconds: float = 0.02) -> np.ndarray:
    return np.full(int(16_000 * seconds), value, np.int16)


async def settle() -> None:
    for _ in range(5):  # let the futures' callbacks reach the loop
        await asyncio.sleep(0)


def test_chunks_wait_while_one_is_unanswered_and_go_together() -> None:
    async def scenario() -> None:
        job = Job()
        speech = RemoteSpeech(job, 25.0, 0.035)  # type: ignore[arg-type]
        handle = job.handle
        first = speech.push(chunk(1), 16_000)
        assert [[int(p[0]) for p in pcms] for _, pcms in handle.sent] == [[1]]  # sent at once
        second, third = speech.push(chunk(2), 16_000), speech.push(chunk(3), 16_000)
        assert len(handle.sent) == 1  # held: the first is unanswered
        handle.pending[0].set_result(m.Reply("talk", 0, (frame(0.005),)))
        await settle()
        assert [f.t for f in await first] == [0.005]
        assert [[int(p[0]) for p in pcms] for _, pcms in handle.sent] == [[1], [2, 3]]  # one message for both
        handle.pending[1].set_result(m.Reply("talk", 1, ()))
        handle.pending[2].set_result(m.Reply("talk", 2, error="too much", code="buffer_full"))
        await settle()
        assert await second == []
        with pytest.raises(BufferFull, match="too much"):
            await third

    asyncio.run(scenario())


def test_held_audio_goes_before_an_end_and_never_waits_past_its_bound() -> None:
    async def scenario() -> None:
        job = Job()
        speech = RemoteSpeech(job, 25.0, 0.035)  # type: ignore[arg-type]
        handle = job.handle
        speech.push(chunk(1), 16_000)
        speech.push(chunk(2), 16_000)  # held
        speech.end()
        kinds = [(kind, [int(p[0]) for p in what] if kind == "audio" else type(what).__name__)
                 for kind, what in handle.sent]
        assert kinds == [("audio", [1]), ("audio", [2]), ("command", "EndSegment")]
        sends = len(handle.sent)
        pushed = 0
        while len(handle.sent) == sends:  # the first is still unanswered: these wait …
            speech.push(chunk(10 + pushed), 16_000)
            pushed += 1
        assert pushed == round(MAX_HELD_S / 0.02) and len(handle.sent[-1][1]) == pushed  # … up to MAX_HELD_S
        speech.push(chunk(99, seconds=0.5), 16_000)  # a long chunk goes at once
        assert [int(p[0]) for p in handle.sent[-1][1]] == [99]

    asyncio.run(scenario())
