"""The soak: ``livepuppet serve`` in its own process with four sessions at once for ten minutes (two webcam
puppets over WHIP, a WebRTC talking head fed over the audio WebSocket, a frames-mode talking head), sampled
every 10 s (:mod:`livepuppet.streaming.clients.soak_client`): server RSS and threads, each client's
frames/s, and the WebRTC talking head's A/V offset at the receiver. After a warm-up: RSS and threads should
stay flat, fps steady, and the A/V offset drift within 10 ms.

Run: ``python bench/soak_server.py [--duration 600] [--warmup 60] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from livepuppet.engine.media.audio_io import read_audio
from livepuppet.streaming.clients.server_process import SOAK_OVERRIDES, ServerProcess
from livepuppet.streaming.clients.soak_client import SPEECH_RATE, SoakSample, nodding_portrait, run_soak

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "soak.json"
TEXT = "Papa bought a map. Bob may pop by. Mama, a bad apple!"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0)
    parser.add_argument("--warmup", type=float, default=60.0)
    parser.add_argument("--sample", type=float, default=10.0)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), TEXT], check=True, capture_output=True)
        speech = read_audio(wav, SPEECH_RATE)
        print(f"{'t s':>6} {'RSS MB':>8} {'threads':>8} {'puppet-1':>9} {'puppet-2':>9} {'talk':>6} {'frames':>7} "
              f"{'A/V ms':>7} {'healthz ms':>10} {'loop late':>9}")

        def show(s: SoakSample) -> None:
            f = s.fps
            print(f"{s.t_s:>6.0f} {s.rss_mb:>8.1f} {s.threads:>8} {f['puppet-1']:>9} {f['puppet-2']:>9} "
                  f"{f['talk']:>6} {f['frames']:>7} {s.av_offset_ms if s.av_offset_ms is not None else '-':>7} "
                  f"{s.healthz_ms:>10} {s.loop_late:>9}",
                  flush=True)

        server = ServerProcess(Path(tmp) / "server.log", SOAK_OVERRIDES)
        with server:
            report = asyncio.run(run_soak(server.base_url, server.ws_port, nodding_portrait(), speech, args.duration,
                                          server.status, args.sample, show))
        problems = server.log_problems()
    summary = report.summary(args.warmup)
    summary.update(log_problems=problems[:20], duration_s=args.duration, warmup_s=args.warmup,
                   cpu=platform.processor() or platform.machine(), cores=os.cpu_count())
    print(json.dumps(summary, indent=2))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"summary": summary, "samples": [vars(s) for s in report.samples]}, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
