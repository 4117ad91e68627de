"""Streaming through a lossy network: ``livepuppet serve`` in its own process, an aiortc client whose ICE
transport is impaired in both directions (:mod:`livepuppet.streaming.clients.lossy_link`: seeded
Gilbert-Elliott loss, mean burst 3 packets, plus 20 ms ± 10 ms delay, i.e. reordering).

* puppet (webcam in, avatar out): frames/s received by the client (down) and taken in by the server (up)
  at 0, 1, 5 and 10 % loss; then ``--blackouts`` 1 s blackouts (everything lost both ways), each followed
  by a clean link or by 5 % loss: time from the end of the blackout to the first decoded frame, and the
  keyframe requests (RTCP PLI) that crossed the link;
* talk (speech in over the WebSocket, video and audio back over WebRTC) at 5 % loss with a 1 s blackout:
  time to the first audio packet and the first frame after it, and seconds of audio received in the 3 s
  after it.

Run: ``python bench/bench_network_faults.py [--phase 8] [--blackouts 3] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
from livepuppet.streaming.clients.lossy_link import LinkFaults, LossyLink, impair
from livepuppet.streaming.clients.server_process import SOAK_OVERRIDES, ServerProcess
from livepuppet.streaming.clients.soak_client import nodding_portrait
from livepuppet.streaming.clients.talk_client import TalkClient
from livepuppet.streaming.clients.whip_client import ArrayVideoTrack, WhipSession, whip_close, whip_connect
from livepuppet.streaming.protocol import Ready

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "network_faults.json"
LOSSES = (0.0, 0.01, 0.05, 0.10)
DELAY = {"delay_s": 0.02, "jitter_s": 0.01}


def frames_in(base: str, session_id: str) -> int:
    with urllib.request.urlopen(f"{base}/api/sessions/{session_id}", timeout=30) as r:
        return int(json.loads(r.read())["frames_in"])


def faults(loss: float) -> LinkFaults:
    return LinkFaults(loss=loss, burst=3.0, **DELAY)


async def blackout(link: LossyLink, session: WhipSession, now: Callable[[], int], then: LinkFaults
                   ) -> dict[str, float]:
    link.set_faults(then, then)
    pli = link.counters.pli_in + link.counters.pli_out
    link.blackout(1.0)
    await asyncio.sleep(1.0)
    end = now()
    await asyncio.sleep(3.0)
    after = [t for t in session.arrivals if t >= end]
    return {"recovery_s": round((after[0] - end) / 1e9, 3) if after else float("nan"),
            "fps_1_3s_after": round(sum(end + 1e9 <= t < end + 3e9 for t in after) / 2.0, 1),
            "pli": link.counters.pli_in + link.counters.pli_out - pli}


async def puppet(server: ServerProcess, phase_s: float, blackouts: int) -> dict[str, object]:
    track = ArrayVideoTrack(30, nodding_portrait(), loop=True)
    session = await whip_connect(server.base_url, track, keep=lambda i: False)
    await asyncio.wait_for(session.first_frame.wait(), 30)
    await asyncio.sleep(2.0)
    link = impair(session.pc, seed=21)
    rows = []
    for loss in LOSSES:
        link.set_faults(faults(loss), faults(loss))
        before = await asyncio.to_thread(frames_in, server.base_url, session.session_id)
        t0 = track._clock.now_ns()
        await asyncio.sleep(phase_s)
        t1 = track._clock.now_ns()
        up = await asyncio.to_thread(frames_in, server.base_url, session.session_id) - before
        down = sum(t0 <= t < t1 for t in session.arrivals)
        rows.append({"loss": loss, "down_fps": round(down / phase_s, 1), "up_fps": round(up / phase_s, 1),
                     "dropped_out": link.counters.dropped_out, "dropped_in": link.counters.dropped_in})
    recoveries = []
    for i in range(blackouts):
        for then in (faults(0.0), faults(0.05)):
            result = await blackout(link, session, track._clock.now_ns, then)
            recoveries.append({"after": f"{then.loss:.0%} loss", "round": i, **result})
    alive = await asyncio.to_thread(frames_in, server.base_url, session.session_id) > 0
    await whip_close(server.base_url, session)
    await link.aclose()
    return {"loss_rows": rows, "blackouts": recoveries, "session_survived": alive}


async def talk(server: ServerProcess) -> dict[str, object]:
    session = await whip_connect(server.base_url, None, mode="talk", audio=True, keep=lambda i: False)
    await asyncio.wait_for(session.first_frame.wait(), 30)
    link = impair(session.pc, faults(0.05), faults(0.05), seed=9)
    t = np.arange(16000 * 12) / 16000
    speech = (0.3 * np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    async with TalkClient(f"ws://127.0.0.1:{server.ws_port}/talk?session={session.session_id}") as client:
        await client.wait_for(lambda tr: tr.of_type(Ready))
        await client.start(16000)
        sender = asyncio.ensure_future(client.send_audio(speech, 16000, realtime=True))
        await asyncio.sleep(4.0)
        link.blackout(1.0)
        await asyncio.sleep(1.0)
        end = client._clock.now_ns()
        await asyncio.sleep(3.0)
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
    audio = [a for a in session.audio if a.arrived_ns >= end]
    video = [v for v in session.arrivals if v >= end]
    result = {"audio_recovery_s": round((audio[0].arrived_ns - end) / 1e9, 3) if audio else None,
              "video_recovery_s": round((video[0] - end) / 1e9, 3) if video else None,
              "audio_s_in_3s_after": round(sum(len(a.samples) / a.rate for a in audio
                                               if a.arrived_ns < end + 3e9), 2)}
    await whip_close(server.base_url, session)
    await link.aclose()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", type=float, default=8.0, help="seconds per loss rate")
    parser.add_argument("--blackouts", type=int, default=3)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ServerProcess(Path(tmp) / "server.log", SOAK_OVERRIDES) as server:
        result = {"puppet": asyncio.run(puppet(server, args.phase, args.blackouts)), "talk": asyncio.run(talk(server))}
        problems = server.log_problems()
    print(f"{'loss':>5} {'down fps':>9} {'up fps':>7}")
    for row in result["puppet"]["loss_rows"]:  # type: ignore[index]
        print(f"{row['loss']:>5.0%} {row['down_fps']:>9} {row['up_fps']:>7}")
    print(f"\n{'blackout then':>14} {'recovery s':>11} {'fps 1-3 s after':>16} {'PLI':>4}")
    for row in result["puppet"]["blackouts"]:  # type: ignore[index]
        print(f"{row['after']:>14} {row['recovery_s']:>11} {row['fps_1_3s_after']:>16} {row['pli']:>4}")
    clean = [r["recovery_s"] for r in result["puppet"]["blackouts"] if r["after"] == "0% loss"]  # type: ignore[index]
    print(f"median recovery after a clean blackout: {statistics.median(clean):.2f} s")
    print(f"talk at 5 % loss, 1 s blackout: {result['talk']}")
    print(f"server log problems: {len(problems)}")
    result.update(log_problems=problems[:20], cpu=platform.processor() or platform.machine(), cores=os.cpu_count(),
                  faults={"burst_packets": 3.0, **DELAY})
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
