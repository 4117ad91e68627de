"""Memory of the streaming writer: peak RSS must not grow with the clip length (``speak`` and ``animate``
write video frames and audio chunks as they are made; an hour must fit as well as a minute).

What: for each ``--seconds`` value, a fresh process writes that long a clip through ``MediaWriter`` — 512×512
frames at 25 fps (the bundled portrait, shifted every frame so the encoder has real work) and 16 kHz mono
audio in 40 ms chunks, one per frame — and reports its peak RSS (``VmHWM``), wall time and file size.
Run: ``python bench/bench_media_writer.py [--seconds 15 60 120] [--ext mp4] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_model  # bench/machine.py (the script's folder is on sys.path)

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "media_writer.json"
FPS = 25
RATE = 16_000


def peak_rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(seconds: float, out: Path) -> dict[str, float]:
    import numpy as np
    from livepuppet.engine.media.media_writer import MediaWriter
    from skimage import data

    image = data.astronaut()
    tone = (0.2 * np.sin(2 * np.pi * 220 * np.arange(RATE // FPS) / RATE)).astype(np.float32)
    frames = int(seconds * FPS)
    start_rss = peak_rss_mb()
    start = time.perf_counter()
    with MediaWriter(out, 512, 512, FPS, audio_rate=RATE, audio_channels=1) as writer:
        for k in range(frames):
            writer.write_frame(np.roll(image, k % 64, axis=1))
            writer.write_audio(tone)
    wall = time.perf_counter() - start
    return {"seconds": seconds, "frames": frames, "wall_s": wall, "frames_per_s": frames / wall,
            "rss_before_mb": start_rss, "peak_rss_mb": peak_rss_mb(), "file_mb": out.stat().st_size / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[15.0, 60.0, 120.0])
    parser.add_argument("--ext", default="mp4", choices=("mp4", "mov", "mkv", "webm"))
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.out)))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in args.seconds:
            out = Path(tmp) / f"clip.{args.ext}"
            result = subprocess.run([sys.executable, __file__, "--child", str(seconds), "--out", str(out)],
                                    capture_output=True, text=True, check=True)
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
            out.unlink()
    cpu = cpu_model()
    print(f"MediaWriter, .{args.ext}, 512×512 @ {FPS} fps + {RATE} Hz mono ({cpu}, {os.cpu_count()} CPUs)")
    print(f"{'clip s':>7} {'frames':>7} {'wall s':>7} {'fps':>6} {'RSS start MB':>13} {'RSS peak MB':>12} "
          f"{'file MB':>8}")
    for r in rows:
        print(f"{r['seconds']:7.0f} {r['frames']:7d} {r['wall_s']:7.1f} {r['frames_per_s']:6.0f} "
              f"{r['rss_before_mb']:13.0f} {r['peak_rss_mb']:12.0f} {r['file_mb']:8.1f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": {"cpu": cpu, "cpus": os.cpu_count(),
                                                 "python": platform.python_version()},
                                     "ext": args.ext, "rows": rows}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
