"""Sessions per machine: concurrent talking heads and webcam sessions against ``livepuppet serve`` in its own
process, at each worker-process count asked for.

Talking heads: frames mode over the audio WebSocket, real speech (espeak-ng) streamed in 20 ms chunks at
real time, as from a microphone or a streaming TTS; their fps is frames received per second of the steady
window (25 is the target), and their lag: how long after its speech was sent (at real time) each frame
arrived, p95 over the window, the worst session's (what a listener sees: the face behind the voice).
Webcam sessions: aiortc WHIP clients sending a 30 fps face video and receiving
the avatar; their fps is avatar frames the engine made per second (the output track repeats the last frame
when the engine is late, so frames received would hide it). Per
load: per-session fps (min and median), p95 engine ms per frame (the server's session stats), aggregate
fps, the CPU the server and its worker processes used (cores, from /proc), and how often the server's event
loop ran over 40 ms late (``livepuppet_loop_lag_seconds``; every session waits on it). The server admits
everything (``server.admission = "accept"``) so overload shows how throughput degrades.

Run: ``python bench/bench_capacity.py [--workers 1 2] [--talk 1 2 4 6 8 10] [--webcam 1 2 4] [--seconds 8]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
import aioice.ice
import numpy as np
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.motion.scripted_motion import scripted_motion
from livepuppet.engine.pipeline import Animator, open_portrait
from livepuppet.engine.speech.resampler import StreamingResampler
from livepuppet.export.audio.espeak import EspeakSynth, VoiceSettings
from livepuppet.streaming.clients.server_metrics import late_since, loop_lag
from livepuppet.streaming.clients.server_process import SOAK_OVERRIDES, ServerProcess, stat_fields
from livepuppet.streaming.clients.talk_client import TalkClient, TalkFrame
from livepuppet.streaming.clients.whip_client import ArrayVideoTrack, whip_close, whip_connect
from livepuppet.streaming.protocol import Ready
from livepuppet.streaming.server.ice import restrict_host_addresses
from skimage import data

TEXT = "Papa bought a map. Bob may pop by the barn, and mama baked a bad apple pie for the boys."
RATE = 16_000
WARMUP_S = 2.0
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "capacity.json"


@dataclass
class Row:
    preset: str
    workers: int
    kind: str
    sessions: int
    fps_min: float
    fps_median: float
    aggregate_fps: float
    lag_ms_p95: float  # talk: the worst session's p95 of frame arrival - when its speech was sent
    engine_ms_p95: float
    cpu_cores: float
    loop_late_pct: float  # the server's event loop: % of its 50 ms timer wake-ups over 40 ms late


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        if (fields := stat_fields(pid)) is not None:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def late_pct(before: dict[float, float], after: dict[float, float], seconds: float = 0.04) -> float:
    late, total = late_since(before, after, seconds)
    return round(100.0 * late / total, 1) if total else 0.0


def get(base: str, path: str) -> dict:
    with urllib.request.urlopen(base + path, timeout=10) as r:
        return dict(json.loads(r.read()))


class Server:
    """``livepuppet serve`` in its own process (:class:`ServerProcess`) with ``workers`` engine worker
    processes, every session admitted."""

    def __init__(self, workers: int, preset: str, log_path: Path) -> None:
        self._process = ServerProcess(log_path, (*SOAK_OVERRIDES, f"server.workers={workers}", "server.max_sessions=32",
                                                 "server.idle_timeout_s=60"), start_timeout_s=90.0, preset=preset)
        self._process.__enter__()
        self.base = self._process.base_url
        self.audio_port = self._process.ws_port

    def pids(self) -> list[int]:
        return self._process.pids()

    def stop(self) -> None:
        self._process.__exit__(None, None, None)


def lag_p95_ms(frames: list[TalkFrame], sent_at_ns: int) -> float:
    """p95 of how long after its speech was sent (speech time t at ``sent_at_ns`` + t, real time) each frame
    arrived, in ms; infinite without frames."""
    if not frames:
        return float("inf")
    return float(np.percentile([(f.arrived_ns - sent_at_ns) / 1e6 - f.t * 1e3 for f in frames], 95))


async def engine_p95(server: Server, ids: list[str]) -> list[float]:
    """Each live session's p95 engine ms per frame (the server's own figure)."""
    def fetch() -> list[float]:
        return [float(get(server.base, f"/api/sessions/{i}")["engine_ms_p95"]) for i in ids]
    return await asyncio.to_thread(fetch)


async def talk_load(server: Server, sessions: int, pcm: np.ndarray, seconds: float
                    ) -> tuple[list[float], list[float], list[float]]:
    """``sessions`` frames-mode talking heads fed real-time speech; per-session fps and p95 lag (ms) in the
    steady window, and each session's p95 engine ms."""
    url = f"ws://127.0.0.1:{server.audio_port}/talk"
    clients = [TalkClient(url) for _ in range(sessions)]
    for c in clients:
        await c.__aenter__()
    try:
        for c in clients:
            await c.wait_for(lambda t: t.of_type(Ready), 60)
            await c.start(RATE)
        loops = int(np.ceil((WARMUP_S + seconds) * RATE / len(pcm))) + 1
        feed = np.tile(pcm, loops)

        sent_at = [0] * sessions  # when each client began sending: speech time t is sent at sent_at + t

        async def stream(c: TalkClient, offset: int) -> None:
            await asyncio.sleep(offset * 0.013)  # stagger the 20 ms chunks
            sent_at[offset] = time.monotonic_ns()
            await c.send_audio(feed, RATE, chunk_s=0.02, realtime=True)

        senders = [asyncio.ensure_future(stream(c, i)) for i, c in enumerate(clients)]
        await asyncio.sleep(WARMUP_S)
        start = time.monotonic_ns()
        counts = [len(c.transcript.frames) for c in clients]
        await asyncio.sleep(seconds)
        end = time.monotonic_ns()
        fps = [(len(c.transcript.frames) - n) / ((end - start) / 1e9) for c, n in zip(clients, counts, strict=True)]
        lags = [lag_p95_ms(c.transcript.frames[n:], t0) for c, n, t0 in zip(clients, counts, sent_at, strict=True)]
        p95 = await engine_p95(server, [c.transcript.of_type(Ready)[0].session for c in clients])
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, return_exceptions=True)
        return fps, lags, p95
    finally:
        for c in clients:
            await c.close()


async def webcam_load(server: Server, sessions: int, frames: list[np.ndarray], seconds: float
                      ) -> tuple[list[float], list[float]]:
    count = int((WARMUP_S + seconds + 2) * 30)
    peers = [await whip_connect(server.base, ArrayVideoTrack(30, frames, count=count), keep=lambda i: False)
             for _ in range(sessions)]
    try:
        for p in peers:
            await asyncio.wait_for(p.first_frame.wait(), 60)
        await asyncio.sleep(WARMUP_S)

        def made() -> list[int]:  # avatar frames the engine made (the track repeats frames when it is late)
            return [int(get(server.base, f"/api/sessions/{p.session_id}")["frames_out"]) for p in peers]

        start, counts = time.monotonic_ns(), await asyncio.to_thread(made)
        await asyncio.sleep(seconds)
        end, after = time.monotonic_ns(), await asyncio.to_thread(made)
        fps = [(b - a) / ((end - start) / 1e9) for a, b in zip(counts, after, strict=True)]
        return fps, await engine_p95(server, [p.session_id for p in peers])
    finally:
        for p in peers:
            await whip_close(server.base, p)


def measure(server: Server, preset: str, workers: int, kind: str, sessions: int, seconds: float, pcm: np.ndarray,
            frames: list[np.ndarray]) -> Row:
    pids = server.pids()
    t0, c0, hist0 = time.monotonic(), cpu_seconds(pids), loop_lag(server.base)
    lags: list[float] = []
    if kind == "talk":
        fps, lags, p95 = asyncio.run(talk_load(server, sessions, pcm, seconds))
    else:
        fps, p95 = asyncio.run(webcam_load(server, sessions, frames, seconds))
    cores = (cpu_seconds(pids) - c0) / (time.monotonic() - t0)
    late = late_pct(hist0, loop_lag(server.base))
    time.sleep(1.5)  # let the sessions close before the next load
    return Row(preset, workers, kind, sessions, round(min(fps), 1), round(float(np.median(fps)), 1), round(sum(fps), 1),
               round(max(lags), 1) if lags else 0.0, round(float(np.median(p95)), 1) if p95 else 0.0, round(cores, 2),
               late)


def speech() -> np.ndarray:
    utterance = EspeakSynth().synthesize(TEXT, VoiceSettings("en-us+f5", rate=160))
    return StreamingResampler(utterance.rate, RATE).push(utterance.audio)


def driver_frames(count: int = 60) -> list[np.ndarray]:
    config = EngineConfig()
    animator = Animator(open_portrait(data.astronaut(), config), config)
    return [animator.animate(scripted_motion(i / 30.0), full=False).crop.pixels.copy() for i in range(count)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--talk", type=int, nargs="*", default=[1, 2, 4, 6, 8, 10])
    parser.add_argument("--webcam", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--preset", default="cpu-realtime", help="server preset (e.g. cpu-fast: 256² crop)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    restrict_host_addresses(("127.0.0.1",))
    assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
    pcm, frames = speech(), driver_frames()
    rows: list[Row] = []
    log_dir = Path(tempfile.mkdtemp(prefix="livepuppet-capacity-"))
    for workers in args.workers:
        server = Server(workers, args.preset, log_dir / f"server-{workers}.log")
        try:
            for kind, loads in (("talk", args.talk), ("webcam", args.webcam)):
                for sessions in loads:
                    row = measure(server, args.preset, workers, kind, sessions, args.seconds, pcm, frames)
                    rows.append(row)
                    print(f"workers {workers}  {kind:6s} ×{sessions:<2d}  fps/session min {row.fps_min:5.1f} "
                          f"median {row.fps_median:5.1f}  aggregate {row.aggregate_fps:6.1f}  "
                          f"lag p95 {row.lag_ms_p95:6.0f} ms  "
                          f"engine p95 {row.engine_ms_p95:5.1f} ms  CPU {row.cpu_cores:.2f} cores  "
                          f"loop late {row.loop_late_pct:4.1f} %", flush=True)
        finally:
            server.stop()
    print(f"\npreset {args.preset}, {os.cpu_count()} CPUs")
    print("| workers | kind | sessions | fps/session min | median | aggregate fps | lag p95 ms | engine p95 ms "
          "| CPU cores | loop late % |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.workers} | {r.kind} | {r.sessions} | {r.fps_min} | {r.fps_median} | {r.aggregate_fps} | "
              f"{r.lag_ms_p95 if r.kind == 'talk' else '—'} | {r.engine_ms_p95} | {r.cpu_cores} | {r.loop_late_pct} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"cpus": os.cpu_count(), "preset": args.preset,
                                     "rows": [asdict(r) for r in rows]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
