"""A Pipecat bot with a talking face, no cloud service, no API key: open the page, type a sentence, and the
avatar says it (espeak-ng speaks it, or a WAV file stands in for the TTS). The face and voice reach the
browser over Pipecat's SmallWebRTC transport; livepuppet's ``LivePuppetVideoService`` sits after the "TTS".

    pip install 'livepuppet[pipecat]'   # and: apt-get install espeak-ng
    python examples/pipecat_avatar_bot.py [--source ME.jpg] [--say "Hello!"] [--wav SPEECH.wav] [--port 7860]

then open http://127.0.0.1:7860 . Pipeline: transport.input() → EspeakTTS → LivePuppetVideoService →
transport.output(). Put an STT and an LLM before the TTS and it is a voice agent with a face.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import shutil
import wave
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web
from livepuppet.engine.heap import freeze_startup_heap
from livepuppet.engine.media.audio_io import read_audio
from livepuppet.errors import DependencyError, InputError
from livepuppet.integrations.avatar import AvatarAssets, load_avatar
from livepuppet.integrations.pipecat import LivePuppetVideoService
from pipecat.frames.frames import Frame, TextFrame, TTSAudioRawFrame, TTSSpeakFrame, TTSStartedFrame, TTSStoppedFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport
from pipecat.workers.runner import WorkerRunner

log = logging.getLogger("pipecat_avatar_bot")

OUT_RATE = 24000  # the pipeline's output audio rate
CHUNK_S = 0.1  # the "TTS" hands out audio in 100 ms pieces, faster than real time, as cloud TTSs do
BOTS_KEY: web.AppKey[set[Bot]] = web.AppKey("bots", set)


class EspeakTTS(FrameProcessor):  # type: ignore[misc]
    """A local TTS: ``TTSSpeakFrame``/``TextFrame`` text → espeak-ng speech as TTS audio frames (or always
    the same WAV, when given one)."""

    def __init__(self, wav: Path | None = None, voice: str = "en-us") -> None:
        super().__init__()
        self._wav = read_audio(wav, 22050) if wav is not None else None
        self._voice = voice
        if wav is None and shutil.which("espeak-ng") is None:
            raise DependencyError("espeak-ng is missing: apt-get install espeak-ng (or pass --wav FILE)")

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM and isinstance(frame, TTSSpeakFrame | TextFrame):
            pcm, rate = await self._speak(frame.text)
            await self.push_frame(TTSStartedFrame())
            step = int(rate * CHUNK_S)
            for i in range(0, len(pcm), step):
                await self.push_frame(TTSAudioRawFrame(audio=pcm[i:i + step].tobytes(), sample_rate=rate,
                                                       num_channels=1))
            await self.push_frame(TTSStoppedFrame())
        else:
            await self.push_frame(frame, direction)

    async def _speak(self, text: str) -> tuple[np.ndarray, int]:
        """(int16 PCM, rate) of ``text`` spoken."""
        if self._wav is not None:
            return (np.clip(self._wav, -1, 1) * 32767).astype(np.int16), 22050
        process = await asyncio.create_subprocess_exec("espeak-ng", "-v", self._voice, "--stdout", text,
                                                       stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.DEVNULL)
        data, _ = await process.communicate()
        with wave.open(io.BytesIO(data)) as w:
            return np.frombuffer(w.readframes(w.getnframes()), np.int16), w.getframerate()


class Bot:
    """One browser's pipeline: its WebRTC connection, the local TTS, the avatar and the transport."""

    def __init__(self, connection: SmallWebRTCConnection, assets: AvatarAssets, fps: float, wav: Path | None,
                 greeting: str) -> None:
        size = int(assets.source.crop.shape[0])
        self.transport = SmallWebRTCTransport(webrtc_connection=connection, params=TransportParams(
            audio_out_enabled=True, video_out_enabled=True, video_out_is_live=False,  # images ride the audio
            video_out_width=size, video_out_height=size, video_out_framerate=int(round(fps)),
            video_out_bitrate=2_000_000))
        self.avatar = LivePuppetVideoService(assets=assets, fps=fps)
        pipeline = Pipeline([self.transport.input(), EspeakTTS(wav), self.avatar, self.transport.output()])
        self.worker = PipelineWorker(pipeline, params=PipelineParams(audio_out_sample_rate=OUT_RATE),
                                     enable_rtvi=False, cancel_on_idle_timeout=False)
        self.connected = asyncio.Event()

        @self.transport.event_handler("on_client_connected")
        async def on_connected(_transport: Any, _client: Any) -> None:
            self.connected.set()
            if greeting:
                await self.say(greeting)

        @self.transport.event_handler("on_client_disconnected")
        async def on_disconnected(_transport: Any, _client: Any) -> None:
            await self.worker.cancel()

    async def say(self, text: str) -> None:
        await self.worker.queue_frame(TTSSpeakFrame(text))

    async def run(self) -> None:
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(self.worker)
        await runner.run()


PAGE = """<!doctype html><meta charset="utf-8"><title>livepuppet × Pipecat</title>
<body style="font-family:sans-serif;background:#111;color:#eee;text-align:center">
<video id="v" autoplay playsinline style="width:512px;height:512px;background:#000"></video><br>
<button id="go">Connect</button> <input id="t" size="50" value="Hello! I am a face that runs on a CPU.">
<button id="say">Say it</button>
<script>
const v = document.getElementById('v');
document.getElementById('go').onclick = async () => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('audio', {direction: 'recvonly'});
  pc.addTransceiver('video', {direction: 'recvonly'});
  const stream = new MediaStream();
  pc.ontrack = (e) => { stream.addTrack(e.track); v.srcObject = stream; };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((ok) => { if (pc.iceGatheringState === 'complete') ok();
    else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && ok(); });
  const r = await fetch('/api/offer', {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({sdp: pc.localDescription.sdp, type: pc.localDescription.type})});
  await pc.setRemoteDescription(await r.json());
};
document.getElementById('say').onclick = () => fetch('/api/say', {method: 'POST',
  headers: {'Content-Type': 'application/json'}, body: JSON.stringify({text: document.getElementById('t').value})});
</script>"""


def create_app(assets: AvatarAssets, *, fps: float = 25.0, wav: Path | None = None,
               greeting: str = "") -> web.Application:
    """The page, ``POST /api/offer`` (SDP offer → answer; starts a bot) and ``POST /api/say`` ({"text"})."""
    app = web.Application()
    app[BOTS_KEY] = set()
    tasks: set[asyncio.Task[None]] = set()

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def offer(request: web.Request) -> web.Response:
        body = await request.json()
        connection = SmallWebRTCConnection()
        await connection.initialize(sdp=body["sdp"], type=body["type"])
        bot = Bot(connection, assets, fps, wav, greeting)
        app[BOTS_KEY].add(bot)
        task = asyncio.ensure_future(bot.run())
        tasks.add(task)
        task.add_done_callback(lambda t: (tasks.discard(t), app[BOTS_KEY].discard(bot)))
        answer = connection.get_answer()
        return web.json_response({"sdp": answer["sdp"], "type": answer["type"]})

    async def say(request: web.Request) -> web.Response:
        text = str((await request.json()).get("text", "")).strip()
        if not text:
            return web.json_response({"error": "say what? send {\"text\": \"...\"}"}, status=400)
        for bot in list(app[BOTS_KEY]):
            await bot.say(text)
        return web.json_response({"bots": len(app[BOTS_KEY])})

    async def stop_bots(_: web.Application) -> None:
        for bot in list(app[BOTS_KEY]):
            await bot.worker.cancel()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    app.router.add_get("/", page)
    app.router.add_post("/api/offer", offer)
    app.router.add_post("/api/say", say)
    app.on_shutdown.append(stop_bots)
    return app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", help="portrait (default: the bundled astronaut photo)")
    parser.add_argument("--say", default="Hello! I am a talking face, running on your CPU.",
                        help="what the bot says when a browser connects ('' for nothing)")
    parser.add_argument("--wav", type=Path, help="say this WAV instead of synthesizing text")
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    try:
        assets = load_avatar(args.source)
    except InputError as exc:
        print(f"pipecat_avatar_bot: error: {exc}")
        return 3
    freeze_startup_heap()  # what was loaded lives as long as the bot: keep it out of the collector's passes
    print(f"open http://{args.host}:{args.port}")
    web.run_app(create_app(assets, fps=args.fps, wav=args.wav, greeting=args.say), host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
