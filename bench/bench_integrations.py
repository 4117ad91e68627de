"""The talking head through each way in, on the same speech: Pipecat's frame processor, the LiveKit Agents
video generator, and the native WebSocket frames path (the server in this process).

What: espeak-ng speech (a voice held out of the audio model's training) handed over as a TTS does, all at
once in 100 ms pieces (WebSocket: 20 ms PCM16 chunks, as fast as the socket takes them):

* Pipecat: ``LivePuppetVideoService`` in a pipeline run by ``pipecat.tests.utils.run_test``; first frame =
  first TTS audio frame entering the service → first image showing speech leaving it;
* LiveKit: ``LivePuppetVideoGenerator`` driven as ``AvatarRunner`` drives it (pulling frames while pushing
  audio); first frame = first ``push_audio`` → first video frame followed by its audio;
* native: a ``TalkClient`` on the server's audio WebSocket in frames mode (JPEG frames as fast as rendered);
  first frame = first chunk sent → first frame received.

Per-frame cost: engine ms per rendered frame (the generator's own render time; the server's frames path:
not exposed, so process CPU only) and the process's CPU ms (all threads) per frame output, which adds the
framework, conversions and, for the native path, JPEG encoding. Pipecat and LiveKit run in real time (one
frame per 1/fps, idle frames included in the count); the frames path renders speech frames only, as fast as
it can.

Run: ``python bench/bench_integrations.py [--runs 3] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("GLOG_minloglevel", "2")
import numpy as np
from livepuppet.engine.config import EngineConfig
from livepuppet.export.audio.espeak import EspeakSynth, VoiceSettings
from livepuppet.integrations.avatar import AvatarAssets, load_avatar

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_talk import start_server  # noqa: E402  (the server in its own thread, as bench_talk runs it)

TEXT = "Papa bought a map. Bob may pop by the barn, and mama baked a bad apple pie."
VOICE = "en-us+f5"
FPS = 25.0
RATE = 24000
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "integrations.json"


def pipecat_run(assets: AvatarAssets, pcm: np.ndarray, rate: int) -> dict[str, float]:
    from livepuppet.integrations.pipecat import METADATA_KEY, LivePuppetVideoService
    from pipecat.frames.frames import Frame, OutputImageRawFrame, TTSAudioRawFrame, TTSStartedFrame, TTSStoppedFrame
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.tests.utils import SleepFrame, run_test

    class Stamp(FrameProcessor):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.got: list[tuple[int, Frame]] = []
            self.generator: Any = None

        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            self.got.append((time.perf_counter_ns(), frame))
            if service.stream is not None:
                self.generator = service.stream.generator  # the service closes its stream at the end
            await self.push_frame(frame, direction)

    data = (pcm * 32767).astype(np.int16)
    step = int(rate * 0.1)
    tts = [TTSStartedFrame(), *(TTSAudioRawFrame(audio=data[i:i + step].tobytes(), sample_rate=rate, num_channels=1)
                                for i in range(0, len(data), step)), TTSStoppedFrame()]
    before, after = Stamp(), Stamp()
    service = LivePuppetVideoService(assets=assets, fps=FPS, sample_rate=RATE)
    cpu = time.process_time()
    asyncio.run(run_test(Pipeline([before, service, after]), frames_to_send=[SleepFrame(0.3), *tts,
                                                                              SleepFrame(len(pcm) / rate + 0.5)],
                         start_timeout=30.0))
    cpu = time.process_time() - cpu
    sent = next(t for t, f in before.got if isinstance(f, TTSAudioRawFrame))
    images = [(t, f) for t, f in after.got if isinstance(f, OutputImageRawFrame)]
    first = next(t for t, f in images if f.metadata[METADATA_KEY]["speech_t"] is not None)
    stats = after.generator.stats
    return {"first_frame_ms": (first - sent) / 1e6, "engine_ms_per_frame": stats.render_ms_total / stats.frames,
            "cpu_ms_per_frame": cpu * 1000 / len(images), "frames": float(len(images))}


def livekit_run(assets: AvatarAssets, pcm: np.ndarray, rate: int) -> dict[str, float]:
    from livekit import rtc
    from livekit.agents.voice.avatar import AudioSegmentEnd
    from livepuppet.integrations.livekit import LivePuppetVideoGenerator

    data = (pcm * 32767).astype(np.int16)
    step = int(rate * 0.1)

    async def scenario() -> dict[str, float]:
        gen = LivePuppetVideoGenerator(assets=assets, fps=FPS, sample_rate=RATE)
        got: list[tuple[int, Any]] = []

        async def pull() -> None:
            async for item in gen:
                got.append((time.perf_counter_ns(), item))
                if isinstance(item, AudioSegmentEnd):
                    return

        cpu = time.process_time()
        puller = asyncio.ensure_future(pull())
        await asyncio.sleep(0.3)
        sent = time.perf_counter_ns()
        for i in range(0, len(data), step):
            chunk = data[i:i + step]
            await gen.push_audio(rtc.AudioFrame(chunk.tobytes(), rate, 1, len(chunk)))
        await gen.push_audio(AudioSegmentEnd())
        await asyncio.wait_for(puller, 60)
        cpu = time.process_time() - cpu
        stats = gen.generator.stats
        await gen.aclose()
        items = [x for _, x in got]
        first = next(got[k][0] for k in range(len(items) - 1)
                     if isinstance(items[k], rtc.VideoFrame) and isinstance(items[k + 1], rtc.AudioFrame))
        video = sum(isinstance(x, rtc.VideoFrame) for x in items)
        return {"first_frame_ms": (first - sent) / 1e6, "engine_ms_per_frame": stats.render_ms_total / stats.frames,
                "cpu_ms_per_frame": cpu * 1000 / video, "frames": float(video)}

    return asyncio.run(scenario())


def native_run(audio_port: int, pcm: np.ndarray, rate: int) -> dict[str, float]:
    from livepuppet.streaming.clients.talk_client import TalkClient
    from livepuppet.streaming.protocol import Ended, Ready

    async def scenario() -> dict[str, float]:
        async with TalkClient(f"ws://127.0.0.1:{audio_port}/talk") as c:
            await c.wait_for(lambda t: t.of_type(Ready))
            await c.start(rate)
            cpu = time.process_time()
            sent = await c.send_audio(pcm, rate)
            await c.end()
            expected = int(np.ceil(len(pcm) / rate * FPS))
            await c.wait_for(lambda t: len(t.frames) >= expected or t.of_type(Ended), 60)
            cpu = time.process_time() - cpu
            frames = c.transcript.frames
            return {"first_frame_ms": (frames[0].arrived_ns - sent[0]) / 1e6,
                    "cpu_ms_per_frame": cpu * 1000 / len(frames), "frames": float(len(frames))}

    return asyncio.run(scenario())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    from loguru import logger

    logger.remove()  # Pipecat's debug log would drown the table
    utterance = EspeakSynth().synthesize(TEXT, VoiceSettings(VOICE, rate=160))
    pcm, rate = utterance.audio.astype(np.float32), utterance.rate
    print(f"speech: {len(pcm) / rate:.1f} s ({VOICE}, {rate} Hz); {FPS:g} fps, audio out {RATE} Hz", flush=True)
    assets = load_avatar(None, EngineConfig())
    _, audio_port, _ = start_server()
    rows: dict[str, list[dict[str, float]]] = {"pipecat": [], "livekit": [], "native_ws_frames": []}
    for run in range(args.runs):
        rows["pipecat"].append(pipecat_run(assets, pcm, rate))
        rows["livekit"].append(livekit_run(assets, pcm, rate))
        rows["native_ws_frames"].append(native_run(audio_port, pcm, rate))
        print(f"run {run + 1}: " + "; ".join(f"{k} " + ", ".join(f"{n} {v:.1f}" for n, v in r[-1].items())
                                             for k, r in rows.items()), flush=True)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    print(f"\nSame speech through each path, {os.cpu_count()} cores ({cpu}); median of {args.runs} runs")
    print(f"  {'path':<18} {'first frame ms':>15} {'engine ms/frame':>16} {'CPU ms/frame':>13} {'frames':>7}")
    for name, runs in rows.items():
        def med(key: str, runs: list[dict[str, float]] = runs) -> str:
            values = [r[key] for r in runs if key in r]
            return f"{np.median(values):.1f}" if values else "-"
        print(f"  {name:<18} {med('first_frame_ms'):>15} {med('engine_ms_per_frame'):>16} "
              f"{med('cpu_ms_per_frame'):>13} {med('frames'):>7}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"cpu": cpu, "cores": os.cpu_count(), "fps": FPS, "runs": rows}, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
