"""Sessions coming and going beside steady ones: ``livepuppet serve`` in its own process, ``--steady``
frames-mode talking heads streaming speech at real time, while short sessions (0.5–1 s of speech each) open
and close one after another beside them for ``--seconds`` (every session admitted). What a new session
waits: from connecting to its first frame. What the steady sessions feel: the server's event loop lateness
(``livepuppet_loop_lag_seconds``: samples over 40 / 80 / 200 ms; every session waits on that loop) and the
gaps between their frames as received (p99, max, count over 200 ms).

Run: ``python bench/bench_churn.py [--steady 2] [--seconds 30] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from bench_capacity import RATE, speech
from livepuppet.streaming.clients.server_metrics import late_since, loop_lag
from livepuppet.streaming.clients.server_process import SOAK_OVERRIDES, ServerProcess
from livepuppet.streaming.clients.talk_client import TalkClient
from livepuppet.streaming.protocol import Error, Ready
from machine import cpu_model

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "churn.json"
THRESHOLDS_S = (0.04, 0.08, 0.2)


class Refused(Exception):
    """The server refused a short session (its error event)."""


@dataclass
class Result:
    cpu: str
    workers: int
    steady: int
    seconds: float
    sessions_closed: int
    session_errors: int
    loop_samples: int
    loop_late: dict[str, int]  # samples later than each threshold (ms)
    gap_ms_p99: float
    gap_ms_max: float
    gaps_over_200ms: int
    first_frame_ms_p50: float  # a short session: connect → its first frame (what a new caller waits)
    first_frame_ms_max: float


async def churn(url: str, pcm: np.ndarray, seconds: float, base: str, steady: int, workers: int) -> Result:
    feed = np.tile(pcm, int(seconds * RATE / len(pcm)) + 4)
    clients = [TalkClient(url) for _ in range(steady)]
    closed, errors = 0, 0
    waits: list[float] = []
    for c in clients:
        await c.__aenter__()
        await c.wait_for(lambda t: t.of_type(Ready), 60)
        await c.start(RATE)
    senders = [asyncio.ensure_future(c.send_audio(feed, RATE, realtime=True)) for c in clients]

    async def come_and_go() -> None:
        nonlocal closed, errors
        k = 0
        while True:
            try:
                began = time.monotonic_ns()
                async with TalkClient(url) as c:
                    await c.wait_for(lambda t: t.of_type(Ready) or t.of_type(Error), 10)
                    if refused := c.transcript.of_type(Error):
                        raise Refused(f"{refused[0].code}: {refused[0].message}")
                    await c.start(RATE)
                    await c.send_audio(pcm[:RATE // 2 + (k % 3) * RATE // 4], RATE, realtime=True)
                    await c.wait_for(lambda t: t.frames, 10)
                    waits.append((c.transcript.frames[0].arrived_ns - began) / 1e6)
                closed += 1
            except (TimeoutError, OSError, Refused) as exc:
                errors += 1
                print(f"  a short session failed: {exc!r}", flush=True)
                await asyncio.sleep(0.5)
            k += 1

    try:
        await asyncio.sleep(3.0)  # warm-up: the steady sessions are streaming
        before = await asyncio.to_thread(loop_lag, base)
        counts = [len(c.transcript.frames) for c in clients]
        churner = asyncio.ensure_future(come_and_go())
        await asyncio.sleep(seconds)
        churner.cancel()
        await asyncio.gather(churner, return_exceptions=True)
        after = await asyncio.to_thread(loop_lag, base)
    finally:
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, return_exceptions=True)
        for c in clients:
            await c.close()
    total = late_since(before, after, THRESHOLDS_S[0])[1]
    gaps = np.concatenate([np.diff([f.arrived_ns for f in c.transcript.frames[n:]]) / 1e6
                           for c, n in zip(clients, counts, strict=True)])
    return Result(cpu=cpu_model(), workers=workers, steady=steady, seconds=seconds, sessions_closed=closed,
                  session_errors=errors, loop_samples=total,
                  loop_late={f"{t * 1e3:.0f}": late_since(before, after, t)[0] for t in THRESHOLDS_S},
                  gap_ms_p99=round(float(np.percentile(gaps, 99)), 1), gap_ms_max=round(float(gaps.max()), 1),
                  gaps_over_200ms=int((gaps > 200).sum()),
                  first_frame_ms_p50=round(float(np.median(waits)), 1) if waits else float("nan"),
                  first_frame_ms_max=round(max(waits), 1) if waits else float("nan"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steady", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    pcm = speech()
    gc.freeze()  # this client's own collections must not show up as gaps in what it receives
    overrides = (*SOAK_OVERRIDES, f"server.workers={args.workers}", "server.session_rate_per_min=0",
                 f"server.max_sessions={args.steady + 2}")
    with tempfile.TemporaryDirectory() as tmp, ServerProcess(Path(tmp) / "server.log", overrides) as server:
        result = asyncio.run(churn(f"ws://127.0.0.1:{server.ws_port}/talk", pcm, args.seconds, server.base_url,
                                   args.steady, args.workers))
    late = "  ".join(f">{ms} ms: {n}" for ms, n in result.loop_late.items())
    print(f"{result.cpu}, {os.cpu_count()} CPUs, {args.workers} workers: {args.steady} steady talking heads, "
          f"{result.sessions_closed} sessions came and went in {args.seconds:.0f} s ({result.session_errors} failed)")
    print(f"server loop lag, of {result.loop_samples} samples: {late}")
    print(f"steady sessions' frame gaps: p99 {result.gap_ms_p99} ms, max {result.gap_ms_max} ms, "
          f"{result.gaps_over_200ms} over 200 ms")
    print(f"a new session's first frame, from connecting: median {result.first_frame_ms_p50} ms, "
          f"max {result.first_frame_ms_max} ms")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(asdict(result), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
