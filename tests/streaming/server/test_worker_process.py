"""A worker process's command loop, run on a thread over a pipe: a job it cannot open is answered with an
error, and the worker goes on serving. Its speech inbox: queued audio taken in at once, answered in order."""

from __future__ import annotations

import threading
from dataclasses import replace
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import pytest
from livepuppet.engine.clock import ManualClock
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.media.audio_io import read_audio
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.speech.generator import TalkingHeadGenerator
from livepuppet.engine.speech.mouth_model import AudioMouthModel
from livepuppet.streaming.server import worker_messages as m
from livepuppet.streaming.server.worker_process import MAX_COALESCED, SpeechInbox, WorkerHost


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


class Recorder:
    """Stands in for the worker's pipe: keeps what the inbox sends (the replies of a step come in one
    message), and how many messages."""

    def __init__(self) -> None:
        self.sent: list[object] = []
        self.messages = 0

    def send(self, message: object) -> None:
        self.messages += 1
        self.sent.extend(message.replies if isinstance(message, m.Replies) else [message])


class Job:
    """What the inbox needs of its talking head's job."""

    name = "job"

    def charge(self, cost_ns: int) -> None:
        pass


def inbox(prepared: PreparedSource, config: EngineConfig, model: AudioMouthModel
          ) -> tuple[SpeechInbox, TalkingHeadGenerator, Recorder]:
    gen = TalkingHeadGenerator(prepared, config, model, fps=25, audio_rate=16_000, clock=ManualClock())
    link = Recorder()
    return SpeechInbox(Job(), gen, link), gen, link  # type: ignore[arg-type]


def test_queued_audio_is_taken_in_at_once_and_every_request_answered_in_order(
        config: EngineConfig, prepared: PreparedSource, model: AudioMouthModel, speech_wav: Path) -> None:
    """Chunks that queued while the engine rendered go to the model as one call: each request still gets its
    reply, in order; the mouth frames (with the last) are the ones chunk-by-chunk intake gives."""
    pcm = (read_audio(speech_wav, 16_000)[:16_000] * 32767).astype(np.int16)
    chunks = [pcm[i:i + 320] for i in range(0, 16_000, 320)]
    batched, gen, link = inbox(prepared, config, model)
    for r, chunk in enumerate(chunks[:30]):
        batched.put(m.PushAudio("job", r, chunk, 16_000))
    batched.put(m.EndSegment("job", 30))  # a control command ends a batch
    for r, chunk in enumerate(chunks[30:], start=31):
        batched.put(m.PushAudio("job", r, chunk, 16_000))
    batched.step()
    replies = [r for r in link.sent if isinstance(r, m.Reply)]
    assert [r.request for r in replies] == list(range(len(chunks) + 1)) and not any(r.error for r in replies)
    assert link.messages == 1  # one message back for the whole step
    # Batches of at most MAX_COALESCED: 0–24, 25–29, then the end, then 31–50; frames go with each last reply.
    assert MAX_COALESCED == 25 and {r.request for r in replies if r.frames} <= {24, 29, 30, 50}
    one_by_one, gen_alone, link_alone = inbox(prepared, config, model)
    for r, chunk in enumerate(chunks[:30]):
        one_by_one.put(m.PushAudio("job", r, chunk, 16_000))
        one_by_one.step()
    one_by_one.put(m.EndSegment("job", 30))
    for r, chunk in enumerate(chunks[30:], start=31):
        one_by_one.put(m.PushAudio("job", r, chunk, 16_000))
        one_by_one.step()
    one_by_one.step()

    def mouth(sent: list[object]) -> list[tuple[float, int]]:
        return [(round(f.t, 4), f.viseme) for r in sent if isinstance(r, m.Reply) for f in r.frames]

    assert mouth(link.sent) == mouth(link_alone.sent) and len(mouth(link.sent)) >= 95
    assert gen.queued_samples == gen_alone.queued_samples == 16_000


def test_a_batch_that_would_overflow_is_answered_chunk_by_chunk(
        config: EngineConfig, prepared: PreparedSource, model: AudioMouthModel) -> None:
    """Past ``speech.max_buffer_s`` the chunks that fit are taken, the rest refused with ``buffer_full``,
    exactly as one at a time."""
    small = replace(config, speech=replace(config.speech, max_buffer_s=1.0))
    batched, gen, link = inbox(prepared, small, model)
    tone = (np.sin(np.arange(320) * 0.3) * 8000).astype(np.int16)
    for r in range(60):  # 1.2 s queued at once, 1 s allowed
        batched.put(m.PushAudio("job", r, tone, 16_000))
    batched.step()
    codes = [r.code for r in link.sent if isinstance(r, m.Reply)]
    assert codes == [""] * 50 + ["buffer_full"] * 10
    assert gen.queued_samples == 16_000
