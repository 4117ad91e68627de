"""Lossy networks (in-process faults on the client's ICE transport, both directions; seeded bursty loss):
at 1 %, 5 % and 10 % loss the avatar keeps streaming both ways; after a 1 s blackout video comes back
(the lost pictures are reported with a PLI and the sender answers with a keyframe), a talking head's audio
goes on, and the session survives. Timing bounds are loose: the suite shares 2 loaded cores, and the
figures for docs/reliability.md come from bench/bench_network_faults.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from livepuppet.engine.face.expression import FaceFeatures
from livepuppet.engine.media.audio_io import read_audio
from livepuppet.streaming.clients.lossy_link import GilbertElliott, LinkFaults, impair
from livepuppet.streaming.clients.talk_client import TalkClient
from livepuppet.streaming.clients.whip_client import ArrayVideoTrack, whip_close, whip_connect
from livepuppet.streaming.protocol import Ready
from livepuppet.streaming.server.app import STATE_KEY

from tests.streaming.server.http_client import http

pytestmark = [pytest.mark.slow, pytest.mark.realtime]

LOSSES = (0.01, 0.05, 0.10)
PHASE_S = 3.0
BLACKOUT_S = 1.0
MIN_FPS = 4.0  # "keeps streaming": far below the 30 fps sent, far above a stalled stream's 0
RECOVERY_LIMIT_S = 2.0  # the bench measures it (goal ≤ 1 s); here only a stall is caught


def test_gilbert_elliott_loses_the_asked_share_in_bursts() -> None:
    import random

    model = GilbertElliott(0.05, 4.0, random.Random(7))
    drops = np.array([model.drop() for _ in range(200_000)])
    assert abs(drops.mean() - 0.05) < 0.005
    starts = np.flatnonzero(drops[1:] & ~drops[:-1])
    bursts = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], drops.astype(int), [0]]))))[::2]
    assert len(starts) > 1000 and abs(bursts.mean() - 4.0) < 0.3


def session_state(base: str, session_id: str) -> dict:
    status, body, _ = http("GET", f"{base}/api/sessions/{session_id}")
    assert status == 200, body
    return dict(json.loads(body))


def frames_between(arrivals: list[int], t0: int, t1: int) -> int:
    return sum(t0 <= t < t1 for t in arrivals)


def test_puppet_streams_through_loss_and_recovers_from_a_blackout(
        server_factory, config, face_frames, measure_face: Callable[[np.ndarray], FaceFeatures | None]) -> None:  # noqa: ANN001
    server = server_factory(config)
    base = server.base_url
    loop_clock: list[int] = []

    async def scenario() -> dict[str, object]:
        track = ArrayVideoTrack(30, face_frames, loop=True)
        session = await whip_connect(base, track, keep=lambda i: i % 10 == 0)
        await asyncio.wait_for(session.first_frame.wait(), 20)
        await asyncio.sleep(1.0)
        link = impair(session.pc, seed=13)
        clock = asyncio.get_running_loop()
        out: dict[str, object] = {}
        for loss in LOSSES:
            link.set_faults(LinkFaults(loss=loss), LinkFaults(loss=loss))
            before = await asyncio.to_thread(session_state, base, session.session_id)
            t0 = track._clock.now_ns()
            await asyncio.sleep(PHASE_S)
            t1 = track._clock.now_ns()
            after = await asyncio.to_thread(session_state, base, session.session_id)
            out[f"down_fps_{loss}"] = frames_between(session.arrivals, t0, t1) / PHASE_S
            out[f"up_fps_{loss}"] = (after["frames_in"] - before["frames_in"]) / PHASE_S
        link.set_faults(LinkFaults(), LinkFaults())
        await asyncio.sleep(1.0)
        pli_before = link.counters.pli_out + link.counters.pli_in
        frames_in_before = (await asyncio.to_thread(session_state, base, session.session_id))["frames_in"]
        link.blackout(BLACKOUT_S)
        start = track._clock.now_ns()
        await asyncio.sleep(BLACKOUT_S)
        end = track._clock.now_ns()
        loop_clock.append(int(clock.time()))
        await asyncio.sleep(3.0)
        after_ns = [t for t in session.arrivals if t >= end]
        out["during_blackout"] = frames_between(session.arrivals, start + 100_000_000, end)
        out["recovery_s"] = (after_ns[0] - end) / 1e9 if after_ns else None
        out["fps_after"] = frames_between(session.arrivals, end + 1_000_000_000, end + 3_000_000_000) / 2.0
        out["pli"] = link.counters.pli_out + link.counters.pli_in - pli_before
        state = await asyncio.to_thread(session_state, base, session.session_id)
        out["state"] = state["state"]
        out["uplink_after"] = state["frames_in"] - frames_in_before
        late = [f for f in session.received if f.arrived_ns > end + 1_500_000_000]
        out["face_after"] = bool(late) and measure_face(late[-1].pixels) is not None
        out["dropped"] = (link.counters.dropped_out, link.counters.dropped_in)
        assert await whip_close(base, session) == 200
        await link.aclose()
        return out

    out = asyncio.run(scenario())
    print(out)
    for loss in LOSSES:
        assert out[f"down_fps_{loss}"] >= MIN_FPS, f"avatar stalled at {loss:.0%} loss: {out}"
        assert out[f"up_fps_{loss}"] >= MIN_FPS, f"camera stalled at {loss:.0%} loss: {out}"
    assert out["during_blackout"] == 0, "the blackout let frames through"
    assert out["recovery_s"] is not None and out["recovery_s"] <= RECOVERY_LIMIT_S, out
    assert out["pli"] >= 1, "nobody asked for a keyframe after the blackout"
    assert out["fps_after"] >= MIN_FPS and out["uplink_after"] > 0 and out["face_after"], out
    assert out["state"] == "connected"
    assert server.call(lambda: server.app[STATE_KEY].sessions.count) == 0


def test_talking_head_audio_goes_on_through_loss_and_a_blackout(server_factory, config, speech_wav: Path) -> None:  # noqa: ANN001
    server = server_factory(config)
    base = server.base_url
    pcm = read_audio(speech_wav, 16000)
    pcm = np.concatenate([pcm, pcm, pcm])  # ≈ 10 s of speech, streamed in real time

    async def scenario() -> dict[str, object]:
        port = server.call(lambda: server.app[STATE_KEY].audio_port)
        session = await whip_connect(base, None, mode="talk", audio=True, keep=lambda i: False)
        await asyncio.wait_for(session.first_frame.wait(), 20)
        link = impair(session.pc, LinkFaults(loss=0.05), LinkFaults(loss=0.05), seed=5)
        out: dict[str, object] = {}
        async with TalkClient(f"ws://127.0.0.1:{port}/talk?session={session.session_id}") as talk:
            await talk.wait_for(lambda t: t.of_type(Ready))
            await talk.start(16000)
            sender = asyncio.ensure_future(talk.send_audio(pcm, 16000, realtime=True))
            await asyncio.sleep(3.0)
            link.blackout(BLACKOUT_S)
            await asyncio.sleep(BLACKOUT_S)
            end = talk._clock.now_ns()
            await asyncio.sleep(3.0)
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        audio_after = [a for a in session.audio if a.arrived_ns >= end]
        out["audio_recovery_s"] = (audio_after[0].arrived_ns - end) / 1e9 if audio_after else None
        window = [a for a in audio_after if a.arrived_ns < end + 3_000_000_000]
        out["audio_s_after"] = sum(len(a.samples) / a.rate for a in window)
        out["loud_after"] = float(max((np.abs(a.samples).max() for a in window), default=0))
        video_after = [t for t in session.arrivals if t >= end]
        out["video_recovery_s"] = (video_after[0] - end) / 1e9 if video_after else None
        out["state"] = (await asyncio.to_thread(session_state, base, session.session_id))["state"]
        assert await whip_close(base, session) == 200
        await link.aclose()
        return out

    out = asyncio.run(scenario())
    print(out)
    assert out["audio_recovery_s"] is not None and out["audio_recovery_s"] <= RECOVERY_LIMIT_S, out
    assert out["audio_s_after"] >= 1.0, f"audio did not go on after the blackout: {out}"  # of 3 s sent
    assert out["loud_after"] > 1000, "what came back after the blackout is not the speech"
    assert out["video_recovery_s"] is not None and out["video_recovery_s"] <= RECOVERY_LIMIT_S, out
    assert out["state"] == "connected"
