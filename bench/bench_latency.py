"""Capture-to-avatar latency through real WebRTC on loopback, next to a plain echo in the same run.

What: ``livepuppet serve`` runs in its own process with ``server.latency_probe = true``. This process is
an aiortc WHIP client that sends 512×512 face frames (the bundled portrait animated by the scripted
performance) at ``--fps``, each stamped with its frame id in a strip of black/white cells (see
``streaming/latency_probe.py``); the server copies the strip from each input frame onto the avatar frame
made from it. Latency of frame *i* = the time its first avatar frame arrives here (decoded) minus the
time frame *i* was handed to this side's encoder. It includes encode, RTP, decode, the input ring,
tracking, rendering, the output ring, the output track, encode, RTP and decode again.

Modes, one after the other against the same server: ``echo`` (the same frames returned untouched through
the same rings, tracks and encoders: the cost of the WebRTC stack alone), ``avatar`` (the mesh renderer),
and ``overload`` (avatar with frames sent at ``--overload-fps``, faster than the engine can render:
latest-wins rings must drop frames, not queue them, so latency stays bounded).

Run: ``python bench/bench_latency.py [--seconds 10] [--fps 30] [--overload-fps 90] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
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
from livepuppet.streaming.clients.whip_client import ArrayVideoTrack, whip_close, whip_connect
from livepuppet.streaming.latency_probe import read_id, stamp_id
from livepuppet.streaming.server.ice import restrict_host_addresses
from skimage import data

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latency.json"
WARMUP_S = 2.0  # frames sent in the first seconds are not counted (ICE, codec start, bitrate ramp)


@dataclass
class Result:
    mode: str
    fps_in: float
    sent: int
    returned: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    server_dropped: int
    server_repeated: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def face_frames(count: int) -> list[np.ndarray]:
    config = EngineConfig()
    animator = Animator(open_portrait(data.astronaut(), config), config)
    return [animator.animate(scripted_motion(i / 30.0), full=False).crop.pixels.copy() for i in range(count)]


def session_info(base: str, session_id: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{base}/api/sessions/{session_id}", timeout=10) as r:
        return dict(json.loads(r.read()))


async def measure(base: str, frames: list[np.ndarray], mode: str, fps: float, seconds: float) -> Result:
    def make(i: int) -> np.ndarray:
        pixels = frames[i % len(frames)].copy()
        stamp_id(pixels, i)
        return pixels

    track = ArrayVideoTrack(fps, make_frame=make, count=int((seconds + WARMUP_S) * fps))
    first_arrival: dict[int, int] = {}

    session = await whip_connect(base, track, mode="echo" if mode == "echo" else "puppet", keep=lambda i: True)
    await asyncio.sleep(seconds + WARMUP_S + 0.5)
    loop = asyncio.get_running_loop()
    info = await loop.run_in_executor(None, session_info, base, session.session_id)
    await whip_close(base, session)
    for frame in session.received:
        frame_id = read_id(frame.pixels)
        if frame_id is not None and frame_id not in first_arrival:
            first_arrival[frame_id] = frame.arrived_ns
    start = int(WARMUP_S * fps)
    lat = [(first_arrival[i] - track.sent_ns[i]) / 1e6 for i in range(start, len(track.sent_ns))
           if i in first_arrival]
    arr = np.array(lat) if lat else np.array([np.nan])
    return Result(mode=mode, fps_in=fps, sent=len(track.sent_ns) - start, returned=len(lat),
                  p50_ms=round(float(np.percentile(arr, 50)), 1), p95_ms=round(float(np.percentile(arr, 95)), 1),
                  max_ms=round(float(arr.max()), 1), server_dropped=int(info["dropped"]),  # type: ignore[call-overload]
                  server_repeated=int(info["frames_repeated"]))  # type: ignore[call-overload]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--overload-fps", type=float, default=90.0)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()

    restrict_host_addresses(("127.0.0.1",))
    assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "livepuppet", "serve", "--port", str(port), "-q",
                               "--set", "server.latency_probe=true", "--set", 'server.ice_addresses=["127.0.0.1"]'],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    print("rendering the driver frames …", flush=True)
    frames = face_frames(60)
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(base + "/healthz", timeout=2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                server.kill()
                raise SystemExit("server did not start") from None
            time.sleep(0.3)
    results: list[Result] = []
    try:
        for mode, fps in (("echo", args.fps), ("avatar", args.fps), ("overload", args.overload_fps)):
            print(f"{mode}: {args.seconds:g} s at {fps:g} fps …", flush=True)
            results.append(asyncio.run(measure(base, frames, mode, fps, args.seconds)))
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(20)

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"\nWebRTC loopback latency, 512×512 VP8, {os.cpu_count()} cores ({cpu})")
    print(f"{'mode':<10}{'fps in':>8}{'sent':>7}{'back':>7}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}"
          f"{'dropped':>9}{'repeated':>10}")
    for r in results:
        print(f"{r.mode:<10}{r.fps_in:>8g}{r.sent:>7}{r.returned:>7}{r.p50_ms:>9}{r.p95_ms:>9}{r.max_ms:>9}"
              f"{r.server_dropped:>9}{r.server_repeated:>10}")
    echo, avatar = results[0], results[1]
    print(f"\navatar adds {avatar.p50_ms - echo.p50_ms:.1f} ms at p50 and {avatar.p95_ms - echo.p95_ms:.1f} ms "
          "at p95 over the echo")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"cpu": cpu, "cores": os.cpu_count(), "results": [asdict(r) for r in results]},
                                    indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
