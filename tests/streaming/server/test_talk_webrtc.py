"""Talking head over WebRTC: speech goes in over the WebSocket, video and the same audio come back over
WebRTC in sync; interrupt silences it at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from livepuppet.engine.face.expression import FaceFeatures
from livepuppet.engine.media.audio_io import read_audio
from livepuppet.streaming.av_sync import envelope_lag
from livepuppet.streaming.clients.talk_client import TalkClient
from livepuppet.streaming.clients.whip_client import whip_close, whip_connect
from livepuppet.streaming.protocol import Error, Interrupted, Ready, Speaking
from livepuppet.streaming.server.app import STATE_KEY

pytestmark = [pytest.mark.slow, pytest.mark.realtime]


async def talk_session(server, pcm: np.ndarray, rate: int, interrupt_after_s: float | None = None):  # noqa: ANN001, ANN201
    port = server.call(lambda: server.app[STATE_KEY].audio_port)
    session = await whip_connect(server.base_url, None, mode="talk", audio=True)
    await asyncio.wait_for(session.first_frame.wait(), 20)
    async with TalkClient(f"ws://127.0.0.1:{port}/talk?session={session.session_id}") as c:
        await c.wait_for(lambda t: t.of_type(Ready))
        await c.start(rate, frames="all")  # refused: the video of a WebRTC session is always live
        await c.start(rate)
        await asyncio.sleep(0.5)  # some idle video first
        if interrupt_after_s is None:
            await c.send_audio(pcm, rate, realtime=True)
            await c.end()
            await asyncio.sleep(1.0)
            interrupted_ns = None
        else:
            await c.send_audio(pcm, rate, chunk_s=0.5)  # all of it queued at once, like a TTS
            await asyncio.sleep(interrupt_after_s)
            interrupted_ns = c._clock.now_ns()
            await c.interrupt()
            await asyncio.sleep(1.0)
        events = c.transcript
    await whip_close(server.base_url, session)
    return session, events, interrupted_ns


def rms_envelope(x: np.ndarray, hop: int = 480) -> np.ndarray:
    n = len(x) // hop
    return np.sqrt(np.mean(x[:n * hop].reshape(n, hop) ** 2, axis=1))


def test_same_audio_comes_back_in_sync_with_the_lips(server_factory, config, speech_wav: Path,
                                                    measure_face: Callable[[np.ndarray], FaceFeatures | None]) -> None:
    server = server_factory(config)
    pcm = read_audio(speech_wav, 48000)
    session, events, _ = asyncio.run(talk_session(server, pcm, 48000))
    assert [e.state for e in events.of_type(Speaking)][:2] == [True, False]
    assert [e.code for e in events.of_type(Error)] == ["bad_frames"]

    # The same audio: the loudness contour (10 ms RMS) of what came back matches what was sent, second by
    # second (each second aligned on its own: when the machine is loaded the sender's real-time pacing can
    # slip, the playout runs dry for a moment and plays a short silence, which shifts what follows).
    got = np.concatenate([a.samples for a in session.audio]).astype(np.float32) / 32768
    assert session.audio[0].rate == 48000
    sent_env, got_env = rms_envelope(pcm), rms_envelope(got)
    rs = []
    for start in range(0, len(sent_env) - 100, 100):
        piece = sent_env[start:start + 100]
        if piece.std() < 1e-3:
            continue  # a pause: nothing to recognize
        with np.errstate(invalid="ignore", divide="ignore"):  # silent stretches of the reply have no variance
            scores = [np.corrcoef(got_env[k:k + 100], piece)[0, 1] for k in range(len(got_env) - 100)]
        rs.append(float(np.nanmax(scores)))
    assert len(rs) >= 2 and np.median(rs) > 0.9, f"the returned audio is not the speech that was sent: {rs}"

    # A/V sync at the receiver: sound loudness vs mouth opening (re-tracked), by arrival time.
    audio_t = np.array([a.arrived_ns for a in session.audio]) / 1e9
    level = np.array([np.sqrt(np.mean((a.samples / 32768.0) ** 2)) for a in session.audio])
    frames = [(f.arrived_ns / 1e9, measure_face(f.pixels)) for f in session.received]
    frames = [(t, m.lip_gap) for t, m in frames if m is not None]
    video_t, gap = np.array([t for t, _ in frames]), np.array([g for _, g in frames])
    offset, corr = envelope_lag(audio_t, level, video_t, gap)
    print(f"A/V offset {offset * 1000:+.0f} ms (r = {corr:.2f})")
    assert corr > 0.4, f"mouth opening does not follow the sound (r = {corr:.2f})"
    # The ±40 ms goal is measured by bench/bench_talk.py on a quiet machine; here the suite runs beside other
    # tests on 2 cores and this process also decodes both streams, which skews arrival times, so the test
    # only catches real breakage (a frame or more of systematic offset).
    assert abs(offset) <= 0.1, f"video is {offset * 1000:+.0f} ms off the audio"


def test_interrupt_returns_to_idle_quickly(server_factory, config, speech_wav: Path,
                                           measure_face: Callable[[np.ndarray], FaceFeatures | None]) -> None:
    server = server_factory(config)
    pcm = read_audio(speech_wav, 16000)
    session, events, interrupted_ns = asyncio.run(talk_session(server, pcm, 16000, interrupt_after_s=1.5))
    assert events.of_type(Interrupted)
    after = [a for a in session.audio if a.arrived_ns > interrupted_ns + 100e6]
    assert after and max(np.abs(a.samples).max() for a in after) < 50, "speech went on after the interrupt"
    silent_at = next(a.arrived_ns for a in session.audio if a.arrived_ns > interrupted_ns
                     and np.abs(a.samples).max() < 50)
    assert (silent_at - interrupted_ns) / 1e6 < 150  # server ≤ 20 ms + audio jitter buffer and transport
    def gaps(frames: list) -> list[float]:  # noqa: ANN001
        return [m.lip_gap for m in (measure_face(f.pixels) for f in frames) if m is not None]

    idle = gaps([f for f in session.received if f.arrived_ns < session.received[0].arrived_ns + 400e6][-8:])
    talking = gaps([f for f in session.received if interrupted_ns - 1000e6 < f.arrived_ns < interrupted_ns])
    after = gaps([f for f in session.received if f.arrived_ns > interrupted_ns + 200e6][:10])
    assert max(talking) > max(idle) + 0.05, "the mouth did not move while speaking"
    assert after and max(after) < max(idle) + 0.02, f"the mouth did not return to rest: {after} vs {idle}"
