"""Memory kept per uploaded portrait: 32 uploads of a 25-megapixel JPEG to ``livepuppet serve`` in its own
process, RSS read from ``/proc`` before and after (and after each upload). Run once with the shipped
``server.max_portrait_side`` and once with it raised to 16384 (= keeping the full photo, as before).

Run: ``python bench/bench_uploads.py [--uploads 32] [--side 5000] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from livepuppet.streaming.clients.server_process import ServerProcess
from PIL import Image
from skimage import data

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "uploads.json"


def upload(base: str, jpeg: bytes) -> int:
    request = urllib.request.Request(base + "/api/portraits?name=big.jpg", data=jpeg, method="POST")
    with urllib.request.urlopen(request, timeout=120) as r:
        return int(r.status)


def measure(jpeg: bytes, uploads: int, overrides: tuple[str, ...]) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp, ServerProcess(Path(tmp) / "server.log", overrides) as server:
        time.sleep(1.0)
        before, _ = server.status()
        rss = []
        start = time.perf_counter()
        for _ in range(uploads):
            assert upload(server.base_url, jpeg) == 201
            rss.append(round(server.status()[0], 1))
        seconds = time.perf_counter() - start
    return {"overrides": list(overrides), "rss_before_mb": round(before, 1), "rss_after_mb": rss[-1],
            "kept_per_upload_mb": round((rss[-1] - before) / uploads, 1),
            "seconds_per_upload": round(seconds / uploads, 2),
            "rss_mb": rss}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=32)
    parser.add_argument("--side", type=int, default=5000)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    image = Image.fromarray(data.astronaut()).resize((args.side, args.side), Image.BICUBIC)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=85)
    jpeg = buf.getvalue()
    print(f"{args.uploads} uploads of a {args.side}×{args.side} JPEG ({len(jpeg) / 1e6:.1f} MB)")
    lifted = ("server.upload_rate_per_min=0", f"server.max_portraits={args.uploads}")
    rows = {"shipped": measure(jpeg, args.uploads, lifted),
            "full photo kept": measure(jpeg, args.uploads, (*lifted, "server.max_portrait_side=16384"))}
    print(f"{'setting':<18} {'RSS before':>11} {'RSS after':>10} {'kept/upload':>12} {'s/upload':>9}")
    for name, row in rows.items():
        print(f"{name:<18} {row['rss_before_mb']:>11} {row['rss_after_mb']:>10} {row['kept_per_upload_mb']:>12} "
              f"{row['seconds_per_upload']:>9}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                                     "side": args.side, "jpeg_bytes": len(jpeg), "rows": rows}, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
