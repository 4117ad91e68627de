"""Engine worker processes: sessions spread over two workers; kill -9 of one ends only its sessions (the
others keep streaming) and the worker comes back; a stalled worker stalls neither the audio socket's reading
nor other sessions, and a hung one is replaced; webcam and WebRTC talk sessions work through the
shared-memory rings (and what the workers measure reaches the front's /metrics); admission refuses at
capacity with 503 + Retry-After; nothing (shared memory, processes, threads) is left behind after many
sessions."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from aiortc import RTCPeerConnection
from livepuppet.engine.media.audio_io import read_audio
from livepuppet.streaming.clients.talk_client import TalkClient
from livepuppet.streaming.clients.whip_client import ArrayVideoTrack, whip_close, whip_connect
from livepuppet.streaming.protocol import Ended, Error, Mouth, Ready, Started
from livepuppet.streaming.server import worker_pool
from livepuppet.streaming.server.app import STATE_KEY

from tests.streaming.server.http_client import http

pytestmark = [pytest.mark.slow, pytest.mark.realtime]


def health(server) -> dict:  # noqa: ANN001
    return json.loads(http("GET", server.base_url + "/healthz")[1])


def shm_segments() -> set[str]:
    return {name for name in os.listdir("/dev/shm") if name.startswith("lp_")}


@pytest.fixture()
def two_workers(server_factory, config):  # noqa: ANN001, ANN201
    # Many sessions, by design; every frame rendered however late (the tests count all frames of a TTS
    # faster than real time, which a loaded CI machine could otherwise skip: see test_talk_job.py).
    return server_factory(replace(config, server=replace(config.server, workers=2, max_sessions=8,
                                                          session_rate_per_min=0.0),
                                  speech=replace(config.speech, frames_max_lag_s=0.0)))


async def speak(c: TalkClient, pcm: np.ndarray) -> None:
    await c.wait_for(lambda t: t.of_type(Ready), 30)
    await c.start(16000)
    await c.send_audio(pcm, 16000, chunk_s=0.1)
    await c.end()


async def started_on_worker(c: TalkClient, server) -> int:  # noqa: ANN001
    """Wait for ``ready`` and start 16 kHz speech; the pid of the worker process that runs the session."""
    await c.wait_for(lambda t: t.of_type(Ready), 30)
    session = c.transcript.of_type(Ready)[0].session
    pid = server.call(lambda: server.app[STATE_KEY].sessions.get(session).job.handle.pid)
    await c.start(16000)
    return int(pid)  # type: ignore[call-overload]


def test_sessions_spread_and_a_killed_worker_ends_only_its_own(two_workers, speech_wav: Path) -> None:  # noqa: ANN001
    server = two_workers
    port = server.call(lambda: server.app[STATE_KEY].audio_port)
    pcm = read_audio(speech_wav, 16000)
    frames = int(np.ceil(len(pcm) / 16000 * 25))
    first = health(server)
    assert first["status"] == "ok" and len(first["workers"]) == 2

    async def scenario() -> tuple[dict, TalkClient, TalkClient, dict, int]:
        url = f"ws://127.0.0.1:{port}/talk"
        async with TalkClient(url) as a, TalkClient(url) as b:
            await asyncio.gather(speak(a, pcm), speak(b, pcm))
            await a.wait_for(lambda t: len(t.frames) >= frames, 60)
            await b.wait_for(lambda t: len(t.frames) >= frames, 60)
            placed = await asyncio.to_thread(health, server)
            session_a = a.transcript.of_type(Ready)[0].session
            worker_of_a = server.call(lambda: server.app[STATE_KEY].sessions.get(session_a).job.handle.pid)
            os.kill(worker_of_a, signal.SIGKILL)  # type: ignore[arg-type]
            await a.wait_for(lambda t: t.of_type(Ended), 20)
            before = len(b.transcript.frames)
            await b.start(16000)
            await b.send_audio(pcm[:16000], 16000)  # b's worker is untouched: b keeps talking
            await b.end()
            await b.wait_for(lambda t: len(t.frames) >= before + 25, 30)
            for _ in range(100):  # the killed worker comes back
                back = await asyncio.to_thread(health, server)
                if back["status"] == "ok" and all(w["up"] for w in back["workers"]):
                    break
                await asyncio.sleep(0.2)
            return placed, a, b, back, worker_of_a  # type: ignore[return-value]

    placed, a, b, back, killed = asyncio.run(scenario())
    assert sorted(w["sessions"] for w in placed["workers"]) == [1, 1]  # one session on each worker
    assert len(a.transcript.frames) >= frames and a.transcript.of_type(Ended)[0].reason == "failed"
    assert not b.transcript.of_type(Ended) and len(b.transcript.frames) >= frames + 25
    assert back["status"] == "ok" and killed not in {w["pid"] for w in back["workers"]}

    async def again() -> int:  # new sessions are served after the restart
        async with TalkClient(f"ws://127.0.0.1:{port}/talk") as c:
            await speak(c, pcm[:8000])
            await c.wait_for(lambda t: len(t.frames) >= 12, 30)
            return len(c.transcript.frames)

    assert asyncio.run(again()) >= 12


def test_sessions_opened_together_wait_for_their_portrait(two_workers) -> None:  # noqa: ANN001
    """Four talking heads opened at once on fresh workers: two land on each, and the second on a worker
    must wait until the first has sent the portrait (an OpenJob ahead of its AddPortrait killed the
    worker and ended both sessions)."""
    server = two_workers
    port = server.call(lambda: server.app[STATE_KEY].audio_port)
    pids = {w["pid"] for w in health(server)["workers"]}

    async def together() -> list[TalkClient]:
        clients = [TalkClient(f"ws://127.0.0.1:{port}/talk") for _ in range(4)]
        for c in clients:
            await c.__aenter__()
        try:
            await asyncio.gather(*(c.wait_for(lambda t: t.of_type(Ready) or t.of_type(Ended), 30) for c in clients))
            for c in clients:
                await c.start(16000)
            await asyncio.gather(*(c.send_audio(np.zeros(8000, np.float32), 16000) for c in clients))
            await asyncio.gather(*(c.wait_for(lambda t: len(t.frames) >= 10 or t.of_type(Ended), 30)
                                   for c in clients))
            return clients
        finally:
            for c in clients:
                await c.close()

    clients = asyncio.run(together())
    assert [c.transcript.of_type(Ended) for c in clients] == [[]] * 4
    assert all(len(c.transcript.frames) >= 10 for c in clients)
    after = health(server)
    assert {w["pid"] for w in after["workers"]} == pids  # no worker died


def test_a_stalled_worker_leaves_the_socket_reading_and_answers_in_order(two_workers, speech_wav: Path) -> None:  # noqa: ANN001
    """Speech is taken in without waiting for the worker's answer: with the worker stopped (SIGSTOP) the
    server keeps reading the socket (a ping is answered; waiting for each answer, the reader stopped after
    websockets' 16 queued messages and the keepalive closed the socket), and once it runs again every chunk is
    answered, in order."""
    server = two_workers
    port = server.call(lambda: server.app[STATE_KEY].audio_port)
    pcm = np.tile(read_audio(speech_wav, 16000), 4)[:8 * 16000]  # 8 s: 400 chunks of 20 ms, more than sockets buffer

    async def scenario() -> tuple[float, dict, TalkClient]:
        async with TalkClient(f"ws://127.0.0.1:{port}/talk") as c:
            pid = await started_on_worker(c, server)
            await c.wait_for(lambda t: t.of_type(Started))
            os.kill(pid, signal.SIGSTOP)  # type: ignore[arg-type]
            try:
                await asyncio.wait_for(c.send_audio(pcm, 16000), 15)
                await c.end()
                rtt = await c.ping(timeout=5.0)
                served = await asyncio.to_thread(health, server)  # the front still serves
                assert not c.transcript.of_type(Mouth)  # nothing could be answered yet
            finally:
                os.kill(pid, signal.SIGCONT)  # type: ignore[arg-type]
            await c.wait_for(lambda t: sum(len(e.frames) for e in t.of_type(Mouth)) >= 195, 60)
            return rtt, served, c

    rtt, served, c = asyncio.run(scenario())
    assert rtt < 5.0 and served["sessions"] >= 1
    times = [f.t for e in c.transcript.of_type(Mouth) for f in e.frames]
    assert times == sorted(times) and len(times) >= 195  # 8 s at 25 fps, answered in the order sent
    assert not c.transcript.of_type(Error)


def test_a_hung_worker_is_killed_and_replaced(two_workers, speech_wav: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:  # noqa: ANN001
    """A worker that stops reading its commands for long is taken for hung: it is killed, its session ends
    with ``failed`` and a new process takes its place."""
    monkeypatch.setattr(worker_pool, "MAX_OUTBOX", 8)
    server = two_workers
    port = server.call(lambda: server.app[STATE_KEY].audio_port)
    pcm = np.tile(read_audio(speech_wav, 16000), 8)[:20 * 16000]  # 40 chunks of 16 KB: more than the pipe holds

    async def scenario() -> tuple[TalkClient, int, dict]:
        async with TalkClient(f"ws://127.0.0.1:{port}/talk") as c:
            pid = await started_on_worker(c, server)
            os.kill(pid, signal.SIGSTOP)  # type: ignore[arg-type]
            await c.send_audio(pcm, 16000, chunk_s=0.5)
            await c.wait_for(lambda t: t.of_type(Ended), 30)
            for _ in range(100):
                back = await asyncio.to_thread(health, server)
                if back["status"] == "ok" and all(w["up"] for w in back["workers"]):
                    break
                await asyncio.sleep(0.2)
            return c, pid, back  # type: ignore[return-value]

    c, stopped, back = asyncio.run(scenario())
    assert c.transcript.of_type(Ended)[0].reason == "failed"
    assert back["status"] == "ok" and stopped not in {w["pid"] for w in back["workers"]}


def test_a_silent_worker_is_killed_and_replaced_even_without_traffic(two_workers,  # noqa: ANN001
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A stopped worker whose only session sends it nothing (a talking head between utterances) piles up no
    commands; its silence (no stats for ``SILENT_S``) gives it away."""
    monkeypatch.setattr(worker_pool, "SILENT_S", 2.0)
    server = two_workers
    port = server.call(lambda: server.app[STATE_KEY].audio_port)

    async def scenario() -> tuple[TalkClient, int, dict, float]:
        async with TalkClient(f"ws://127.0.0.1:{port}/talk") as c:
            pid = await started_on_worker(c, server)
            stopped_at = time.monotonic()
            os.kill(pid, signal.SIGSTOP)  # type: ignore[arg-type]
            await c.wait_for(lambda t: t.of_type(Ended), 30)
            ended_after = time.monotonic() - stopped_at
            for _ in range(100):
                back = await asyncio.to_thread(health, server)
                if back["status"] == "ok" and all(w["up"] for w in back["workers"]):
                    break
                await asyncio.sleep(0.2)
            return c, pid, back, ended_after  # type: ignore[return-value]

    c, stopped, back, ended_after = asyncio.run(scenario())
    assert c.transcript.of_type(Ended)[0].reason == "failed" and ended_after < 15
    assert back["status"] == "ok" and stopped not in {w["pid"] for w in back["workers"]}


def test_webcam_and_talk_sessions_through_shared_memory(two_workers, face_frames, speech_wav: Path) -> None:  # noqa: ANN001
    server = two_workers
    pcm = read_audio(speech_wav, 48000)

    async def scenario() -> tuple[int, int, int]:
        track = ArrayVideoTrack(30, face_frames, count=60)
        puppet = await whip_connect(server.base_url, track)
        await asyncio.wait_for(puppet.first_frame.wait(), 30)
        talk = await whip_connect(server.base_url, None, mode="talk", audio=True)
        await asyncio.wait_for(talk.first_frame.wait(), 30)
        port = server.call(lambda: server.app[STATE_KEY].audio_port)
        async with TalkClient(f"ws://127.0.0.1:{port}/talk?session={talk.session_id}") as c:
            await c.wait_for(lambda t: t.of_type(Ready))
            await c.start(48000)
            await c.send_audio(pcm, 48000, chunk_s=0.1)
            await c.end()
            await asyncio.sleep(len(pcm) / 48000 + 0.5)
        await asyncio.sleep(0.5)
        loud = sum(1 for a in talk.audio if np.abs(a.samples).max() > 1000)
        await whip_close(server.base_url, puppet)
        await whip_close(server.base_url, talk)
        return len(puppet.received), len(talk.received), loud

    puppet_frames, talk_frames, loud_packets = asyncio.run(scenario())
    assert puppet_frames >= 20 and talk_frames >= 30
    # What the workers measured is in the front's /metrics (a worker's own registry is never scraped).
    text = http("GET", server.base_url + "/metrics")[1].decode()
    counts = {stage: float(re.search(rf'livepuppet_stage_seconds_count{{stage="{stage}"}} (\S+)', text).group(1))
              for stage in ("track", "render", "engine")}  # type: ignore[union-attr]
    assert counts["track"] >= 10 and counts["render"] >= 30 and counts["engine"] >= 30, counts  # 0 before
    sent_loud = sum(1 for i in range(0, len(pcm) - 960, 960) if np.abs(pcm[i:i + 960]).max() * 32768 > 1000)
    assert loud_packets >= 0.6 * sent_loud  # the speech came back from the worker (some late under load)


async def real_offer() -> str:
    """A valid browser-like offer (a video track to send), so only admission can refuse it."""
    pc = RTCPeerConnection()
    pc.addTransceiver(ArrayVideoTrack(30, [np.zeros((64, 64, 3), np.uint8)], count=1), direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


def test_admission_refuses_at_capacity(server_factory, config, speech_wav: Path) -> None:  # noqa: ANN001
    # One worker, margin 0.9: capacity is a tenth of a core, less than one talking head needs at 25 fps.
    server = server_factory(replace(config, server=replace(config.server, workers=1, capacity_margin=0.9)))
    port = server.call(lambda: server.app[STATE_KEY].audio_port)
    pcm = read_audio(speech_wav, 16000)

    async def scenario() -> tuple[int, dict, list]:
        async with TalkClient(f"ws://127.0.0.1:{port}/talk") as busy:
            await busy.wait_for(lambda t: t.of_type(Ready), 30)
            await busy.start(16000)
            await busy.send_audio(np.tile(pcm, 4), 16000, chunk_s=0.1)
            for _ in range(50):  # until the worker has reported real load
                if server.call(lambda: server.app[STATE_KEY].resources.load) > 0.1:
                    break
                await asyncio.sleep(0.1)
            status, _, headers = await asyncio.to_thread(http, "POST", server.base_url + "/whip",
                                                         (await real_offer()).encode(),
                                                         {"Content-Type": "application/sdp"})
            async with TalkClient(f"ws://127.0.0.1:{port}/talk") as refused:
                await refused.wait_for(lambda t: t.of_type(Error), 30)
                errors = refused.transcript.of_type(Error)
        return status, headers, errors

    status, headers, errors = asyncio.run(scenario())
    assert status == 503 and int(headers["Retry-After"]) > 0
    assert errors[0].code == "busy" and "capacity" in errors[0].message


def test_nothing_left_behind_after_many_sessions(two_workers) -> None:  # noqa: ANN001
    server = two_workers
    port = server.call(lambda: server.app[STATE_KEY].audio_port)
    pids = {w["pid"] for w in health(server)["workers"]}
    segments, threads = shm_segments(), threading.active_count()

    async def cycle() -> None:
        for _ in range(50):
            async with TalkClient(f"ws://127.0.0.1:{port}/talk") as c:
                await c.wait_for(lambda t: t.of_type(Ready) or t.of_type(Error), 20)
                assert not c.transcript.of_type(Error), c.transcript.of_type(Error)
                await c.start(16000)
                await c.send_audio(np.zeros(3200, np.float32), 16000)
        for _ in range(3):  # three webcam sessions too: their input and output rings are shared memory
            track = ArrayVideoTrack(30, [np.zeros((240, 320, 3), np.uint8)], count=10)
            session = await whip_connect(server.base_url, track)
            await asyncio.wait_for(session.first_frame.wait(), 30)
            await whip_close(server.base_url, session)
        for _ in range(50):
            if server.call(lambda: server.app[STATE_KEY].sessions.count) == 0:
                break
            await asyncio.sleep(0.1)

    asyncio.run(cycle())
    after = health(server)
    assert after["sessions"] == 0 and all(w["sessions"] == 0 for w in after["workers"])
    assert {w["pid"] for w in after["workers"]} == pids  # no worker died or was added
    assert shm_segments() <= segments  # every ring unlinked
    assert threading.active_count() <= threads + 2
