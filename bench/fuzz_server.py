"""The long fuzz run: seeded protocol cases against ``livepuppet serve`` in its own process.

What: blocks of cases from :class:`~livepuppet.streaming.clients.fuzz_client.ServerFuzzer` (mutated real
aiortc offers, raw HTTP requests, WebSocket sequences). After each block: ``/healthz`` must answer ok, and
the server's RSS and thread count are read from ``/proc``. At the end the server is stopped (SIGTERM) and
its whole log is searched for tracebacks and leaked-task warnings. RSS growth is measured from the end of
the warm-up blocks (allocator arenas, codec pools and lazy imports fill up first) to the end.

Run: ``python bench/fuzz_server.py [--cases 2400] [--block 100] [--seed 13] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from livepuppet.streaming.clients.fuzz_client import FuzzReport, ServerFuzzer, real_offers
from livepuppet.streaming.clients.server_process import ServerProcess

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "fuzz_server.json"
WARMUP_BLOCKS = 4


def healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url + "/healthz", timeout=30) as r:
            return r.status == 200 and json.loads(r.read())["status"] == "ok"
    except OSError:
        return False


async def run(args: argparse.Namespace, server: ServerProcess) -> dict[str, object]:
    fuzzer = ServerFuzzer("127.0.0.1", server.port, server.ws_port, await real_offers(), args.seed)
    total = FuzzReport()
    rows = []
    unhealthy = 0
    start = time.perf_counter()
    blocks = max(1, args.cases // args.block)
    for block in range(blocks):
        report = await fuzzer.run(args.block)
        total.add(report)
        ok = await asyncio.to_thread(healthy, server.base_url)
        unhealthy += not ok
        rss, threads = server.status()
        rows.append({"block": block, "cases": total.cases, "rss_mb": round(rss, 1), "threads": threads,
                     "failures": len(report.failures), "healthy": ok})
        health = "ok" if ok else "NO"
        print(f"{block:>5} {total.cases:>6} {rss:>8.1f} {threads:>8} {len(report.failures):>9} {health:>8}", flush=True)
    elapsed = time.perf_counter() - start
    base = rows[min(WARMUP_BLOCKS, len(rows)) - 1]["rss_mb"]
    return {"cases": total.cases, "seconds": round(elapsed, 1), "offers_accepted": total.created,
            "answers": dict(sorted(total.answers.items())), "failures": total.failures[:50],
            "failure_count": len(total.failures), "unhealthy_checks": unhealthy,
            "http_5xx": sum(n for k, n in total.answers.items() if k.startswith("http 5")),
            "rss_after_warmup_mb": base, "rss_end_mb": rows[-1]["rss_mb"],
            "rss_growth_after_warmup_mb": round(float(rows[-1]["rss_mb"]) - float(base), 1),  # type: ignore[arg-type]
            "rss_start_mb": rows[0]["rss_mb"], "blocks": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=2400)
    parser.add_argument("--block", type=int, default=100)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    print(f"{'block':>5} {'cases':>6} {'rss MB':>8} {'threads':>8} {'failures':>9} {'healthz':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        # The fuzzer judges answers; per-client allowances are tested elsewhere, so they are lifted here.
        server = ServerProcess(Path(tmp) / "server.log",
                               ("server.session_rate_per_min=0", "server.upload_rate_per_min=0"))
        with server:
            result = asyncio.run(run(args, server))
        problems = server.log_problems()
        exit_code = server.returncode
    result.update(log_problems=problems[:30], log_problem_count=len(problems), server_exit_code=exit_code,
                  seed=args.seed, cpu=platform.processor() or platform.machine(), cores=os.cpu_count())
    print(f"\n{result['cases']} cases in {result['seconds']} s: {result['failure_count']} failures, "
          f"{result['http_5xx']} 5xx, {result['unhealthy_checks']} unhealthy checks, "
          f"{result['log_problem_count']} log problems; RSS {result['rss_start_mb']} MB after block 0, "
          f"{result['rss_after_warmup_mb']} MB after warm-up, {result['rss_end_mb']} MB at the end "
          f"(growth {result['rss_growth_after_warmup_mb']} MB); server exit code {exit_code}")
    for line in result["failures"][:10] + problems[:10]:  # type: ignore[operator]
        print("  ", line)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")
    bad = result["failure_count"] or result["http_5xx"] or result["unhealthy_checks"] or problems
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
