"""Where admission refuses: talking heads opened one at a time against ``livepuppet serve`` as it ships
(``server.admission = "refuse"``, ``server.capacity_margin`` 0.1), until the server turns one away.

What an operator needs to know: does the server stop admitting while every admitted session still gets
its frame rate, and before the next one would have pulled them all down? Each session streams real speech
(espeak-ng) in 20 ms chunks at real time, frames mode, like ``bench_capacity.py``. After each admission the
bench waits ``--settle`` seconds (the server measures the new session's engine time) and records the fps
every admitted session got over the last two of them; the first refusal (a ``busy`` error on the socket)
ends the climb, and all admitted sessions are then measured over a ``--seconds`` window: fps (frames
received per second; 25 is the target), and lag (how long after its speech was sent each frame arrived,
p95, the worst session). ``--over N`` then also opens N sessions past the refusal with admission off
(``server.admission = "accept"`` on a second server), to show what the refusal protected.

Run: ``python bench/bench_admission.py [--workers 2] [--settle 4] [--seconds 8] [--over 1]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
import numpy as np
from bench_capacity import RATE, lag_p95_ms, speech  # bench/ (the script's folder is on sys.path)
from livepuppet.streaming.clients.server_process import ServerProcess
from livepuppet.streaming.clients.talk_client import TalkClient
from livepuppet.streaming.protocol import Error, Ready
from machine import cpu_model

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "admission.json"
WINDOW_S = 2.0  # the fps after each admission: over the last seconds of its settle


@dataclass
class Step:
    sessions: int  # admitted so far
    fps_min: float
    fps_median: float


@dataclass
class Result:
    workers: int
    admission: str
    admitted: int
    refusal: str  # the server's message, or "" if none came before --limit
    steps: list[Step]
    fps_min: float
    fps_median: float
    lag_ms_p95: float


class Climb:
    """Talking heads opened one by one, each streaming speech at real time until closed."""

    def __init__(self, url: str, pcm: np.ndarray) -> None:
        self._url = url
        self._feed = np.tile(pcm, 40)  # minutes of speech: longer than any run
        self.clients: list[TalkClient] = []
        self.sent_at: list[int] = []
        self._senders: list[asyncio.Task[list[int]]] = []

    async def open(self) -> str:
        """One more session; "" if admitted, else the server's refusal."""
        client = TalkClient(self._url)
        await client.__aenter__()
        await client.wait_for(lambda t: t.of_type(Ready) or t.of_type(Error), 60)
        if errors := client.transcript.of_type(Error):
            await client.close()
            return f"{errors[0].code}: {errors[0].message}"
        await client.start(RATE)
        self.clients.append(client)
        self.sent_at.append(time.monotonic_ns())
        self._senders.append(asyncio.ensure_future(client.send_audio(self._feed, RATE, chunk_s=0.02, realtime=True)))
        return ""

    def counts(self) -> list[int]:
        return [len(c.transcript.frames) for c in self.clients]

    async def fps(self, seconds: float) -> list[float]:
        before, start = self.counts(), time.monotonic_ns()
        await asyncio.sleep(seconds)
        elapsed = (time.monotonic_ns() - start) / 1e9
        return [(n - b) / elapsed for n, b in zip(self.counts(), before, strict=True)]

    def lag_p95_ms(self, since: list[int]) -> float:
        """The worst session's p95 of (frame arrival − when its speech was sent), over frames after ``since``."""
        return max((lag_p95_ms(c.transcript.frames[first:], t0) for c, first, t0 in
                    zip(self.clients, since, self.sent_at, strict=True)), default=0.0)

    async def close(self) -> None:
        for task in self._senders:
            task.cancel()
        await asyncio.gather(*self._senders, return_exceptions=True)
        for client in self.clients:
            await client.close()


async def climb(server: ServerProcess, pcm: np.ndarray, admission: str, limit: int, settle_s: float,
                seconds: float, workers: int) -> Result:
    load = Climb(f"ws://127.0.0.1:{server.ws_port}/talk", pcm)
    steps: list[Step] = []
    refusal = ""
    try:
        while len(load.clients) < limit:
            if refusal := await load.open():
                break
            await asyncio.sleep(max(0.0, settle_s - WINDOW_S))
            fps = await load.fps(WINDOW_S)
            steps.append(Step(len(fps), round(min(fps), 1), round(float(np.median(fps)), 1)))
            print(f"  {admission}: {len(fps):2d} admitted, fps over the last {WINDOW_S:.0f} s min {min(fps):5.1f} "
                  f"median {np.median(fps):5.1f}", flush=True)
        if refusal:
            print(f"  {admission}: refused session {len(load.clients) + 1}: {refusal}", flush=True)
        since = load.counts()
        fps = await load.fps(seconds)
        return Result(workers, admission, len(load.clients), refusal, steps, round(min(fps), 1),
                      round(float(np.median(fps)), 1), round(load.lag_p95_ms(since), 1))
    finally:
        await load.close()


def run(workers: int, admission: str, limit: int, settle_s: float, seconds: float, pcm: np.ndarray) -> Result:
    overrides = (f"server.workers={workers}", "server.max_sessions=32", "server.idle_timeout_s=60",
                 f'server.admission="{admission}"')
    with tempfile.TemporaryDirectory() as tmp, \
            ServerProcess(Path(tmp) / "server.log", overrides, start_timeout_s=90.0, preset="cpu-realtime") as server:
        return asyncio.run(climb(server, pcm, admission, limit, settle_s, seconds, workers))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--settle", type=float, default=4.0, help="seconds after each admission")
    parser.add_argument("--seconds", type=float, default=8.0, help="the steady window at the end")
    parser.add_argument("--limit", type=int, default=16, help="stop climbing here if nothing is refused")
    parser.add_argument("--over", type=int, default=1, help="sessions past the refusal, admission off")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    pcm = speech()
    print(f"{cpu_model()}, {os.cpu_count()} CPUs; workers {args.workers}", flush=True)
    refused = run(args.workers, "refuse", args.limit, args.settle, args.seconds, pcm)
    results = [refused]
    if args.over and refused.refusal:
        results.append(run(args.workers, "accept", refused.admitted + args.over, args.settle, args.seconds, pcm))
    print("\n| admission | sessions | refused | fps min | fps median | lag p95 ms |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r.admission} | {r.admitted} | {'yes' if r.refusal else 'no'} | {r.fps_min} | {r.fps_median} | "
              f"{r.lag_ms_p95} |")
    if refused.refusal:
        print(f"\nrefusal: {refused.refusal}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"cpu": cpu_model(), "results": [asdict(r) for r in results]}, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
