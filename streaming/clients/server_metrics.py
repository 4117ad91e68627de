"""Reading a running server's ``/metrics`` from outside (benches, soak, tests): its event-loop lateness."""

from __future__ import annotations

import re
import urllib.request

LOOP_STALL_S = 0.08  # two frames at 25 fps: a lateness of the server's loop every viewer sees
_BUCKET = re.compile(r'livepuppet_loop_lag_seconds_bucket\{le="([^"]+)"\} (\S+)')


def loop_lag(base_url: str, timeout: float = 10.0) -> dict[float, float]:
    """The server's cumulative ``livepuppet_loop_lag_seconds`` histogram: bucket upper bound (s) → samples."""
    with urllib.request.urlopen(base_url + "/metrics", timeout=timeout) as r:
        text = r.read().decode()
    return {float(le): float(n) for le, n in _BUCKET.findall(text)}


def late_since(before: dict[float, float], after: dict[float, float], seconds: float) -> tuple[int, int]:
    """Between two :func:`loop_lag` readings: (samples later than ``seconds``, all samples); ``seconds`` must
    be a bucket bound (``LOOP_LAG_BUCKETS``)."""
    total = after[float("inf")] - before.get(float("inf"), 0.0)
    on_time = after[seconds] - before.get(seconds, 0.0)
    return int(total - on_time), int(total)
