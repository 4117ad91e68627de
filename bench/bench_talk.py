"""Talking-head timing through the real server: first-frame latency, A/V sync and barge-in.

What: a server (in this process, its own thread and loop) with the shipped audio model; espeak-ng
speech (a held-out voice) is streamed over the audio WebSocket in 20 ms PCM16 chunks paced in real time,
like a microphone or a streaming TTS.

* frames mode: first-frame latency = first chunk sent → first JPEG frame received whose speech time is
  ≥ 0 (it shows the first 40 ms of audio);
* WebRTC mode (aiortc receiver, VP8 + Opus on loopback): first sound = first chunk sent → first audible
  audio packet received; A/V offset = the lag that best aligns the received sound's loudness with the
  received mouth opening (MediaPipe re-tracking of every frame), both by arrival time;
* barge-in: ``interrupt`` sent → first silent audio packet received, and → first frame whose mouth is back
  at rest (lip gap within 0.02 of idle);
* server side (from the session's stats): speech arrived → first frame showing it handed to the encoder,
  and interrupt received → first idle frame handed to the encoder. The client-side figures add the
  network, the codecs and aiortc's receive jitter buffers (audio: 4 packets of prefetch, 80 ms).

Run: ``python bench/bench_talk.py [--runs 3] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import urllib.request
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
import numpy as np
from aiohttp import web
from livepuppet.engine.clock import MonotonicClock
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.face.expression import FaceFeatures
from livepuppet.engine.face.tracker import FaceTracker
from livepuppet.engine.speech.mouth_model import SAMPLE_RATE
from livepuppet.engine.speech.resampler import StreamingResampler
from livepuppet.engine.types import VideoFrame
from livepuppet.export.audio.espeak import EspeakSynth, VoiceSettings
from livepuppet.streaming.av_sync import envelope_lag
from livepuppet.streaming.clients.talk_client import TalkClient
from livepuppet.streaming.clients.whip_client import whip_close, whip_connect
from livepuppet.streaming.protocol import Ready
from livepuppet.streaming.server.app import STATE_KEY, create_app
from livepuppet.streaming.server.ice import restrict_host_addresses
from machine import cpu_model  # bench/machine.py (the script's folder is on sys.path)
from skimage import data

TEXT = "Papa bought a map. Bob may pop by the barn, and mama baked a bad apple pie."
VOICE = "en-us+f5"  # held out of the audio model's training
RATE = 48_000
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "talk.json"


def start_server() -> tuple[str, int, asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, object] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        app = create_app(EngineConfig(), data.astronaut(), "astronaut")
        runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        box.update(port=site._server.sockets[0].getsockname()[1], audio=app[STATE_KEY].audio_port)  # type: ignore[union-attr]
        ready.set()
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    ready.wait(60)
    return f"http://127.0.0.1:{box['port']}", int(box["audio"]), loop  # type: ignore[call-overload]


def session_info(base: str, session_id: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{base}/api/sessions/{session_id}", timeout=10) as r:
        return dict(json.loads(r.read()))


def lip_gaps(tracker: FaceTracker, frames: list) -> list[tuple[float, float]]:  # noqa: ANN001
    out = []
    for f in frames:
        features = FaceFeatures.of_track(tracker.track(VideoFrame(pixels=f.pixels, pts=0, seq=0)))
        if features is not None:
            out.append((f.arrived_ns / 1e9, features.lip_gap))
    return out


async def frames_mode(audio_port: int, pcm: np.ndarray) -> float:
    async with TalkClient(f"ws://127.0.0.1:{audio_port}/talk") as c:
        await c.wait_for(lambda t: t.of_type(Ready))
        await c.start(RATE)
        sent = await c.send_audio(pcm, RATE, realtime=True)
        await c.end()
        await c.wait_for(lambda t: len(t.frames) > 0, 10)
        return (c.transcript.frames[0].arrived_ns - sent[0]) / 1e6


async def webrtc_mode(base: str, audio_port: int, pcm: np.ndarray, tracker: FaceTracker) -> dict[str, float]:
    clock = MonotonicClock()
    session = await whip_connect(base, None, mode="talk", audio=True)
    await asyncio.wait_for(session.first_frame.wait(), 20)
    async with TalkClient(f"ws://127.0.0.1:{audio_port}/talk?session={session.session_id}") as c:
        await c.wait_for(lambda t: t.of_type(Ready))
        await c.start(RATE)
        await asyncio.sleep(0.6)
        idle_end = clock.now_ns()
        sent = await c.send_audio(pcm, RATE, realtime=True)
        await c.end()
        await asyncio.sleep(1.0)
        speech_start_ms = float(session_info(base, session.session_id)["speech_start_ms"])
        # Barge-in: queue a lot of speech at once, interrupt while it plays.
        await c.send_audio(np.tile(pcm, 2), RATE, chunk_s=0.5)
        await asyncio.sleep(1.2)
        interrupted = clock.now_ns()
        await c.interrupt()
        await asyncio.sleep(1.0)
        interrupt_ms = float(session_info(base, session.session_id)["interrupt_ms"])
    await whip_close(base, session)
    audible = [a for a in session.audio if a.arrived_ns > sent[0] and np.abs(a.samples).max() > 300]
    first_sound_ms = (audible[0].arrived_ns - sent[0]) / 1e6
    speech_audio = [a for a in session.audio if sent[0] <= a.arrived_ns <= sent[-1] + 1e9]
    speech_video = [f for f in session.received if sent[0] <= f.arrived_ns <= sent[-1] + 1e9]
    gaps = lip_gaps(tracker, speech_video)
    offset, corr = envelope_lag(np.array([a.arrived_ns for a in speech_audio]) / 1e9,
                                np.array([np.sqrt(np.mean((a.samples / 32768.0) ** 2)) for a in speech_audio]),
                                np.array([t for t, _ in gaps]), np.array([g for _, g in gaps]))
    silent = next(a.arrived_ns for a in session.audio if a.arrived_ns > interrupted and np.abs(a.samples).max() < 50)
    idle = [g for _, g in lip_gaps(tracker, [f for f in session.received if idle_end - 4e8 < f.arrived_ns < idle_end])]
    rest = float(np.median(idle))
    after = lip_gaps(tracker, [f for f in session.received if f.arrived_ns > interrupted][:30])
    at_rest = next(t for t, g in after if abs(g - rest) < 0.02)
    return {"server_speech_start_ms": speech_start_ms, "server_interrupt_ms": interrupt_ms,
            "first_sound_ms": first_sound_ms, "av_offset_ms": offset * 1000, "av_corr": corr,
            "interrupt_to_silence_ms": (silent - interrupted) / 1e6,
            "interrupt_to_rest_frame_ms": at_rest * 1000 - interrupted / 1e6}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    restrict_host_addresses(("127.0.0.1",))
    utterance = EspeakSynth().synthesize(TEXT, VoiceSettings(VOICE, rate=160))
    pcm = StreamingResampler(utterance.rate, RATE).push(utterance.audio)
    print(f"speech: {len(pcm) / RATE:.1f} s ({VOICE}); audio model input {SAMPLE_RATE} Hz", flush=True)
    base, audio_port, _ = start_server()
    rows: list[dict[str, float]] = []
    with FaceTracker(EngineConfig().tracker, static=True) as tracker:
        for run in range(args.runs):
            row = {"frames_first_frame_ms": asyncio.run(frames_mode(audio_port, pcm))}
            row.update(asyncio.run(webrtc_mode(base, audio_port, pcm, tracker)))
            rows.append(row)
            print(f"run {run + 1}: " + ", ".join(f"{k} {v:.1f}" for k, v in row.items()), flush=True)
    cpu = cpu_model()
    print(f"\nTalking head through the server, loopback, {os.cpu_count()} cores ({cpu}); median of {args.runs} runs")
    for key in rows[0]:
        values = [r[key] for r in rows]
        print(f"  {key:<28} {np.median(values):8.1f}   (runs: {', '.join(f'{v:.1f}' for v in values)})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"cpu": cpu, "cores": os.cpu_count(), "runs": rows}, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
