"""Session lifecycle: an offer the WebRTC stack rejects is a 4xx that leaves nothing behind (30 in a row);
a job whose steps keep failing is reported failed and reaped; a frames-mode session is a session (in the
API, reaped when idle) and its socket is told it ended."""

from __future__ import annotations

import asyncio
import gc
import re
import threading
from dataclasses import replace

import numpy as np
import pytest
from aiortc import RTCPeerConnection
from livepuppet.engine.clock import ManualClock
from livepuppet.engine.speech.generator import TalkingHeadGenerator
from livepuppet.engine.speech.mouth_model import AudioMouthModel
from livepuppet.streaming.clients.talk_client import TalkClient
from livepuppet.streaming.clients.whip_client import whip_connect
from livepuppet.streaming.protocol import CLOSE_ENDED, Ended, Ready
from livepuppet.streaming.server.app import STATE_KEY
from livepuppet.streaming.server.audio_playout import AudioPlayout
from livepuppet.streaming.server.engine_job import FAIL_AFTER
from livepuppet.streaming.server.metrics import ServerMetrics
from livepuppet.streaming.server.talk_job import TalkJob

from tests.streaming.server.http_client import SDP, error_of, http


async def offer_without_shared_codec() -> str:
    """A real aiortc offer whose only video codec is H.264 in a profile aiortc does not implement (High):
    well formed, so it passes the offer checks and is rejected by the WebRTC stack itself."""
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    pt = re.search(r"m=video \d+ [A-Z/]+ (\d+)", sdp).group(1)  # type: ignore[union-attr]
    lines = [line for line in sdp.splitlines()
             if not re.match(r"a=(rtpmap|fmtp|rtcp-fb):\d+", line) or line.startswith(f"a=rtpmap:{pt} ")]
    sdp = "\r\n".join(lines) + "\r\n"
    sdp = re.sub(r"(m=video \d+ [A-Z/]+) [\d ]+", rf"\1 {pt}", sdp)
    return re.sub(rf"a=rtpmap:{pt} \S+", f"a=rtpmap:{pt} H264/90000\r\na=fmtp:{pt} packetization-mode=1;"
                  "profile-level-id=640032", sdp)


def live_peer_connections() -> int:
    gc.collect()
    return sum(isinstance(o, RTCPeerConnection) for o in gc.get_objects())


def test_rejected_offers_are_4xx_and_leave_nothing_behind(server_factory, config) -> None:  # noqa: ANN001
    # These offers pass the checks and count against the client's allowance: lift it for 31 in a row.
    server = server_factory(replace(config, server=replace(config.server, session_rate_per_min=0.0)))
    offer = asyncio.run(offer_without_shared_codec())
    sessions = server.app[STATE_KEY].sessions

    def tasks() -> int:
        return int(server.call(lambda: len(asyncio.all_tasks())))  # type: ignore[call-overload]

    status, body, _ = http("POST", server.base_url + "/whip?mode=talk", offer.encode(), SDP)  # warm-up (lazy imports)
    assert status == 400
    before_tasks, before_threads, before_pcs = tasks(), threading.active_count(), live_peer_connections()
    for _ in range(30):
        status, body, _ = http("POST", server.base_url + "/whip?mode=talk", offer.encode(), SDP)
        assert status == 400, body
        assert "rejected by the WebRTC stack" in error_of(body)
    assert server.call(lambda: sessions.count) == 0
    assert server.call(lambda: server.app[STATE_KEY].resources.worker.job_count) == 0
    assert tasks() <= before_tasks
    assert threading.active_count() <= before_threads
    assert live_peer_connections() <= before_pcs
    status, _, _ = http("GET", server.base_url + "/healthz")
    assert status == 200


def test_a_job_whose_steps_keep_failing_is_failed(prepared, config) -> None:  # noqa: ANN001
    clock = ManualClock()
    generator = TalkingHeadGenerator(prepared, config, AudioMouthModel.load(), clock=clock)

    def broken(*args: object, **kw: object) -> None:
        raise RuntimeError("renderer exploded")

    generator.head.render = broken  # type: ignore[method-assign]
    job = TalkJob("t", generator, AudioPlayout(48000, 0.03), clock, ServerMetrics.create())
    for _ in range(FAIL_AFTER):
        assert not job.failed
        job.tick()
        assert job.pending()
        job.step()
    assert job.failed and not job.pending()
    assert job.stats.errors == FAIL_AFTER and "renderer exploded" in job.stats.last_error
    job.tick()
    assert not job.pending()  # the worker never steps a failed job again


def test_a_failing_talk_session_is_reaped_and_its_socket_told(server_factory, config) -> None:  # noqa: ANN001
    server = server_factory(config)

    async def scenario() -> tuple[list, int | None, int]:
        session = await whip_connect(server.base_url, None, mode="talk", audio=True)
        await asyncio.wait_for(session.first_frame.wait(), 20)
        port = server.call(lambda: server.app[STATE_KEY].audio_port)
        async with TalkClient(f"ws://127.0.0.1:{port}/talk?session={session.session_id}") as c:
            await c.wait_for(lambda t: t.of_type(Ready))

            def break_it() -> None:
                def broken(*args: object, **kw: object) -> None:
                    raise RuntimeError("renderer exploded")
                job = server.app[STATE_KEY].sessions.get(session.session_id).job
                job.generator.head.render = broken

            server.call(break_it)
            await c.wait_for(lambda t: t.of_type(Ended), 20)
            await asyncio.sleep(0.2)
            ended, code = c.transcript.of_type(Ended), c.closed_code
        status, _, _ = await asyncio.to_thread(http, "GET", f"{server.base_url}/api/sessions/{session.session_id}")
        await session.pc.close()
        return ended, code, status

    ended, code, status = asyncio.run(scenario())
    assert [e.reason for e in ended] == ["failed"] and code == CLOSE_ENDED
    assert status == 404
    assert server.call(lambda: server.app[STATE_KEY].sessions.count) == 0


@pytest.mark.parametrize("idle_timeout_s", [1.0])
def test_frames_sessions_are_sessions_and_are_reaped_when_idle(server_factory, config, idle_timeout_s) -> None:  # noqa: ANN001
    server = server_factory(replace(config, server=replace(config.server, idle_timeout_s=idle_timeout_s)))
    port = server.call(lambda: server.app[STATE_KEY].audio_port)

    async def scenario() -> tuple[int, dict, list, int | None, int]:
        async with TalkClient(f"ws://127.0.0.1:{port}/talk") as c:
            await c.wait_for(lambda t: t.of_type(Ready))
            session_id = c.transcript.of_type(Ready)[0].session
            status, body, _ = await asyncio.to_thread(http, "GET", f"{server.base_url}/api/sessions/{session_id}")
            import json

            info = json.loads(body)
            await c.start(16000)
            await c.send_audio(np.zeros(1600, np.float32), 16000)
            await c.wait_for(lambda t: t.of_type(Ended), 10)  # no input for idle_timeout_s → reaped
            await asyncio.sleep(0.2)
            ended, code = c.transcript.of_type(Ended), c.closed_code
        after, _, _ = await asyncio.to_thread(http, "GET", f"{server.base_url}/api/sessions/{session_id}")
        return status, info, ended, code, after

    status, info, ended, code, after = asyncio.run(scenario())
    assert status == 200 and info["kind"] == "frames" and info["state"] == "open"
    assert [e.reason for e in ended] == ["idle"] and code == CLOSE_ENDED
    assert after == 404 and server.call(lambda: server.app[STATE_KEY].sessions.count) == 0
