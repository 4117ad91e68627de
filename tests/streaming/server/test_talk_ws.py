"""The audio WebSocket: protocol errors are answered and the socket stays usable, frames mode returns a
talking head stamped on the audio timeline, interrupt drops queued speech, other sessions are unaffected."""

from __future__ import annotations

import asyncio
import io
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.media.audio_io import read_audio
from livepuppet.streaming.clients.talk_client import TalkClient
from livepuppet.streaming.protocol import Error, Interrupted, Mouth, Ready, Started
from livepuppet.streaming.server.app import STATE_KEY
from PIL import Image


def open_sessions(server, expect: int, timeout: float = 10.0) -> int:  # noqa: ANN001
    """The server's open session count, once it equals ``expect`` or the timeout passes (teardown is async)."""
    deadline = time.monotonic() + timeout
    while (count := int(server.call(lambda: server.app[STATE_KEY].sessions.count))) != expect \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    return count


def talk_url(server, query: str = "") -> str:  # noqa: ANN001
    port = server.call(lambda: server.app[STATE_KEY].audio_port)
    return f"ws://127.0.0.1:{port}/talk{query}"


def every_frame(config: EngineConfig) -> EngineConfig:
    """Frames mode rendering every frame however late: these tests count all frames of a TTS faster than
    real time, which a loaded CI machine could render later than a real-time listener needs them (then
    skipped; that policy has its own tests in test_talk_job.py)."""
    return replace(config, speech=replace(config.speech, frames_max_lag_s=0.0))


def test_protocol_errors_get_error_events_and_the_socket_survives(server_factory, config, speech_wav: Path) -> None:
    server = server_factory(every_frame(config))
    pcm = read_audio(speech_wav, 16000)[:16000]

    async def scenario() -> list[str]:
        async with TalkClient(talk_url(server)) as c:
            await c.wait_for(lambda t: t.of_type(Ready))
            await c.send_raw(b"\x00\x01" * 100)  # audio before start
            await c.send_raw("{not json")
            await c.send_raw('["start"]')
            await c.send_raw(json.dumps({"type": "start", "sample_rate": 12345}))
            await c.send_raw(json.dumps({"type": "start", "sample_rate": 16000, "format": "mulaw"}))
            await c.send_raw(json.dumps({"type": "start", "sample_rate": 16000, "frames": "some"}))
            await c.send_raw(json.dumps({"type": "dance"}))
            await c.send_raw(json.dumps({"type": "set", "emotion": "bored"}))
            await c.send_raw(json.dumps({"type": "set", "emotion": "happy", "intensity": 7}))
            await c.start(16000)
            await c.send_raw(b"\x01\x02\x03")  # odd byte count: not PCM16
            await c.send_audio(pcm, 16000)  # … and it still works
            await c.end()
            await c.wait_for(lambda t: len(t.frames) >= 20, 30)
            return [e.code for e in c.transcript.of_type(Error)]

    codes = asyncio.run(scenario())
    assert codes == ["not_started", "bad_json", "bad_message", "bad_sample_rate", "bad_format", "bad_frames",
                     "unknown_type", "bad_emotion", "bad_intensity", "bad_audio"]


def test_each_frames_client_chooses_live_or_every_frame(server_factory, config) -> None:  # noqa: ANN001
    """``"frames": "all"`` in a frames-mode start renders that session's every frame however late; the
    default keeps the server's live pacing (``speech.frames_max_lag_s``)."""
    server = server_factory(config)

    async def scenario() -> tuple[float, float]:
        async with TalkClient(talk_url(server)) as every, TalkClient(talk_url(server)) as live:
            for c, frames in ((every, "all"), (live, "live")):
                await c.wait_for(lambda t: t.of_type(Ready))
                await c.start(16000, frames=frames)
                await c.wait_for(lambda t: t.of_type(Started))

            def lag_of(c: TalkClient) -> float:
                session = c.transcript.of_type(Ready)[0].session
                return float(server.call(lambda: server.app[STATE_KEY].sessions.get(session).job.max_lag_s))
            return lag_of(every), lag_of(live)

    every, live = asyncio.run(scenario())
    assert every == 0.0 and live == config.speech.frames_max_lag_s > 0


def test_oversized_messages_close_the_socket_cleanly(server_factory, config) -> None:
    server = server_factory(every_frame(config))

    async def scenario() -> int | None:
        async with TalkClient(talk_url(server)) as c:
            await c.wait_for(lambda t: t.of_type(Ready))
            await c.start(16000)
            await c.send_raw(b"\x00" * (2 << 20))  # 2 MiB in one message
            await asyncio.sleep(0.5)
            return c.closed_code

    assert asyncio.run(scenario()) == 1009
    assert open_sessions(server, 0) == 0  # the session was released


def test_bad_session_and_token_are_refused(server_factory, config) -> None:
    server = server_factory(replace(config, server=replace(config.server, token="t0k")))

    async def scenario() -> tuple[str, str]:
        from websockets.exceptions import InvalidStatus

        with pytest.raises(InvalidStatus, match="401"):
            async with TalkClient(talk_url(server)):
                pass
        async with TalkClient(talk_url(server, "?token=t0k&session=nope")) as c:
            await c.wait_for(lambda t: t.of_type(Error))
            unknown = c.transcript.of_type(Error)[0].message
        async with TalkClient(talk_url(server, "?token=t0k&portrait=nope")) as c:
            await c.wait_for(lambda t: t.of_type(Error))
            portrait = c.transcript.of_type(Error)[0].message
        return unknown, portrait

    unknown, portrait = asyncio.run(scenario())
    assert "no such session" in unknown and "no portrait" in portrait


def test_frames_mode_returns_the_talking_head_on_the_audio_timeline(server_factory, config, speech_wav: Path) -> None:
    server = server_factory(every_frame(config))
    pcm = read_audio(speech_wav, 24000)
    duration = len(pcm) / 24000
    fps = config.speech.fps

    async def scenario() -> TalkClient:
        async with TalkClient(talk_url(server)) as c:
            await c.wait_for(lambda t: t.of_type(Ready))
            await c.start(24000)
            sent = await c.send_audio(pcm, 24000, chunk_s=0.1)  # faster than real time, like a TTS
            await c.end()
            await c.wait_for(lambda t: len(t.frames) >= int(np.ceil(duration * fps)), 60)
            c.first_chunk_ns = sent[0]  # type: ignore[attr-defined]
            return c

    c = asyncio.run(scenario())
    frames = c.transcript.frames
    assert len(frames) == int(np.ceil(duration * fps))
    assert [f.seq for f in frames] == list(range(len(frames)))
    assert np.allclose([f.t for f in frames], np.arange(len(frames)) / fps)
    image = Image.open(io.BytesIO(frames[0].jpeg))
    assert image.format == "JPEG" and image.size == (512, 512)
    mouth = [m for e in c.transcript.of_type(Mouth) for m in e.frames]
    assert len(mouth) == pytest.approx(duration * 100, abs=3)  # one per 10 ms of speech
    assert {"PP", "aa"} <= {m.viseme for m in mouth}
    first_frame_ms = (frames[0].arrived_ns - c.first_chunk_ns) / 1e6  # type: ignore[attr-defined]
    assert first_frame_ms < 1000  # generous on a loaded 2-core CI machine; bench/ measures it properly


def test_interrupt_drops_queued_speech_and_other_sessions_carry_on(server_factory, config, speech_wav: Path) -> None:
    server = server_factory(every_frame(config))
    pcm = read_audio(speech_wav, 16000)

    async def scenario() -> tuple[TalkClient, TalkClient]:
        async with TalkClient(talk_url(server)) as a, TalkClient(talk_url(server)) as b:
            await a.wait_for(lambda t: t.of_type(Ready))
            await b.wait_for(lambda t: t.of_type(Ready))
            await a.start(16000)
            await b.start(16000)
            await a.send_audio(pcm, 16000, chunk_s=0.1)
            await b.send_audio(pcm[:8000], 16000)
            await a.interrupt()
            await a.wait_for(lambda t: t.of_type(Interrupted))
            await b.send_raw("garbage")  # b misbehaves …
            await a.send_audio(pcm[:16000], 16000)  # … a starts a new utterance
            await a.end()
            await b.end()
            await a.wait_for(lambda t: sum(f.epoch == 1 for f in t.frames) >= 25, 30)
            await b.wait_for(lambda t: len(t.frames) >= 12, 30)
            return a, b

    a, b = asyncio.run(scenario())
    new = [f for f in a.transcript.frames if f.epoch == 1]
    assert [f.t for f in new][:3] == pytest.approx([0.0, 0.04, 0.08])  # the new utterance starts at 0
    old = [f for f in a.transcript.frames if f.epoch == 0]
    assert len(old) < len(pcm) / 16000 * 25  # the rest of the first utterance was dropped
    assert b.transcript.of_type(Error)[0].code == "bad_json" and len(b.transcript.frames) >= 12


def test_a_client_vanishing_mid_stream_frees_its_session(server_factory, config, speech_wav: Path) -> None:
    server = server_factory(every_frame(config))
    pcm = read_audio(speech_wav, 16000)

    async def scenario() -> int:
        async with TalkClient(talk_url(server)) as other:
            await other.wait_for(lambda t: t.of_type(Ready))
            gone = TalkClient(talk_url(server))
            await gone.__aenter__()
            await gone.wait_for(lambda t: t.of_type(Ready))
            await gone.start(16000)
            await gone.send_audio(pcm[:16000], 16000, chunk_s=0.1)
            gone._ws.transport.abort()  # type: ignore[union-attr]  # no close frame: the network just went away
            await other.start(16000)
            await other.send_audio(pcm[:8000], 16000)
            await other.end()
            await other.wait_for(lambda t: len(t.frames) >= 12, 30)
            for _ in range(50):
                if server.call(lambda: server.app[STATE_KEY].sessions.count) == 1:
                    break
                await asyncio.sleep(0.1)
            return int(server.call(lambda: server.app[STATE_KEY].sessions.count))  # type: ignore[call-overload]

    assert asyncio.run(scenario()) == 1  # only the other client's session is left
    assert open_sessions(server, 0) == 0  # and it goes when its client leaves
