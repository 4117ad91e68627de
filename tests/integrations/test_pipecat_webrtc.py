"""End to end: the example bot (examples/pipecat_avatar_bot.py) serves its face over Pipecat's SmallWebRTC
transport to a real WebRTC client (aiortc, on loopback); asked to say a sentence, the received video's lips
move with the received sound, which is the sentence's speech, and picture and sound arrive within 40 ms."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pipecat", reason="the pipecat extra is not installed (pip install 'livepuppet[pipecat]')")

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from aiortc import RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack  # noqa: E402
from livepuppet.engine.face.expression import FaceFeatures  # noqa: E402
from livepuppet.streaming.av_sync import envelope_lag  # noqa: E402
from livepuppet.streaming.server.ice import restrict_host_addresses  # noqa: E402

pytestmark = pytest.mark.realtime
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pipecat_avatar_bot.py"
TEXT = "Papa bought a map. Bob may pop by the barn. Mama, a bad apple!"


def load_example():  # noqa: ANN201
    spec = importlib.util.spec_from_file_location("pipecat_avatar_bot", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def receive(track: MediaStreamTrack, out: list[tuple[float, np.ndarray]], started: asyncio.Event) -> None:
    """Every decoded frame with its arrival time (monotonic s): video as RGB, audio as mono f32; ``started``
    is set after a second of video."""
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        now = time.monotonic()
        if track.kind == "video":
            out.append((now, frame.to_ndarray(format="rgb24")))
            if len(out) >= 25:
                started.set()
        else:
            samples = frame.to_ndarray().reshape(-1, len(frame.layout.channels)).mean(axis=1) / 32768.0
            out.append((now, samples.astype(np.float32)))


def envelope(pcm: np.ndarray, rate: int, hop_s: float = 0.01) -> np.ndarray:
    hop = int(rate * hop_s)
    n = len(pcm) // hop
    return np.sqrt(np.mean(pcm[:n * hop].reshape(n, hop) ** 2, axis=1))


def block_match(ref: np.ndarray, got: np.ndarray, block: int = 100, slack: int = 30) -> float:
    """Median over 1 s blocks of the reference envelope of its best correlation with the received envelope
    near the same place (±0.3 s, and the drift so far): robust to a short gap inserted in playback."""
    scores, drift = [], 0
    for i in range(0, len(ref) - block + 1, block):
        best, best_k = -1.0, 0
        for k in range(-slack, slack + 1):
            j = i + drift + k
            if 0 <= j and j + block <= len(got):
                r = float(np.corrcoef(ref[i:i + block], got[j:j + block])[0, 1])
                if r > best:
                    best, best_k = r, k
        drift += best_k
        scores.append(best)
    return float(np.median(scores))


def test_example_bot_over_smallwebrtc(assets, tmp_path: Path,  # noqa: ANN001
                                      measure_face: Callable[[np.ndarray], FaceFeatures | None]) -> None:
    bot = load_example()
    restrict_host_addresses(("127.0.0.1",))  # loopback-only network (see FACTS: aioice skips 127.0.0.1)
    video: list[tuple[float, np.ndarray]] = []
    audio: list[tuple[float, np.ndarray]] = []

    async def scenario() -> tuple[float, float]:
        runner = web.AppRunner(bot.create_app(assets, fps=25.0, greeting=""))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        pc = RTCPeerConnection()
        pc.addTransceiver("audio", direction="recvonly")
        pc.addTransceiver("video", direction="recvonly")
        readers: list[asyncio.Task[None]] = []
        started = asyncio.Event()
        pc.on("track", lambda track: readers.append(asyncio.ensure_future(
            receive(track, video if track.kind == "video" else audio, started))))
        await pc.setLocalDescription(await pc.createOffer())
        async with aiohttp.ClientSession() as http:
            async with http.post(f"http://127.0.0.1:{port}/api/offer", json={
                    "sdp": pc.localDescription.sdp, "type": pc.localDescription.type}) as r:
                answer = await r.json()
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
            await asyncio.wait_for(started.wait(), 30)  # the idle face is on screen
            said = time.monotonic()
            async with http.post(f"http://127.0.0.1:{port}/api/say", json={"text": TEXT}) as r:
                assert (await r.json())["bots"] == 1
            await asyncio.sleep(6.5)
        await pc.close()
        await asyncio.gather(*readers, return_exceptions=True)
        await runner.cleanup()
        return said, time.monotonic()

    said, ended = asyncio.run(scenario())
    assert len(video) > 100, "the face did not arrive"
    # The sound received is the sentence's speech (espeak-ng, as the bot's TTS makes it).
    ref_wav = tmp_path / "ref.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(ref_wav), TEXT], check=True, capture_output=True)
    with wave.open(str(ref_wav)) as w:
        ref = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768.0
        ref_rate = w.getframerate()
    heard = [(t, a) for t, a in audio if t > said]
    rate = 48000
    got = np.concatenate([a for _, a in heard])
    env_ref, env_got = envelope(ref, ref_rate), envelope(got, rate)
    start = int(np.argmax(env_got > 0.3 * env_ref.max()))  # where the speech begins in the received sound
    first = int(np.argmax(env_ref > 0.3 * env_ref.max()))
    a, b = env_ref[first:], env_got[start:]
    assert len(b) >= len(a), "the received speech is cut short"
    assert block_match(a, b) > 0.8  # the same speech (through Opus; a starved sender may insert a gap)
    # The received lips move with it, in sync at the receiver (arrival times on one clock).
    speech_s = len(ref) / ref_rate
    t0 = heard[0][0] + start * 0.01
    window = [(t, f) for t, f in video if t0 - 0.3 < t < t0 + speech_s + 0.3]
    gaps = [(t, m.lip_gap) for t, f in window if (m := measure_face(f)) is not None]
    assert len(gaps) > 0.8 * len(window) and np.std([g for _, g in gaps]) > 0.03  # moving lips
    audio_t = np.array([t for t, _ in heard])
    level = np.array([np.sqrt(np.mean(x ** 2)) for _, x in heard])
    offset, corr = envelope_lag(audio_t, level, np.array([t for t, _ in gaps]), np.array([g for _, g in gaps]))
    print(f"A/V offset at the receiver {offset * 1000:.0f} ms (mouth later than sound if > 0), corr {corr:.2f}")
    assert corr > 0.3 and abs(offset) <= 0.04
