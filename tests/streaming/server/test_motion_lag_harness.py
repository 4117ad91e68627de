"""The motion-to-photon harness of bench/bench_latency.py finds a known lag in re-tracked face video."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "bench_latency.py"


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("bench_latency", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_latency"] = module  # its dataclasses look their module up
    sys.path.insert(0, str(BENCH.parent))  # as when it runs as a script: its helpers (bench/machine.py) beside it
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH.parent))
    yield module
    del sys.modules["bench_latency"]


def test_best_lag_finds_a_delay_between_irregular_samples(bench: ModuleType) -> None:
    rng = np.random.default_rng(0)
    t_sent = np.arange(300) * 33.3e6
    values = np.repeat(rng.standard_normal(75), 4)  # a signal that changes every 4 frames
    t_got = np.sort(t_sent + 73e6 + rng.uniform(0, 6e6, t_sent.shape))  # 73-79 ms later, jittered
    lag, r = bench.best_lag(t_sent, values, t_got, values)
    assert 70 <= lag <= 82 and r > 0.8


def test_motion_lag_on_re_tracked_frames(bench: ModuleType) -> None:
    frames = bench.face_frames(30.0)[:60]  # the scripted talking segment, mouth and blinks moving
    sent = [int(i * 1e9 / 30) for i in range(len(frames) * 2)]
    delay = 2
    # Each avatar frame arrives 50 ms after the driver frame it was made from (its probe id), and shows the
    # face of two frames earlier (66.7 ms): seen 116.7 ms late, 66.7 ms of it inside the "engine".
    received = [(sent[i] + 50_000_000, i, frames[(i - delay) % len(frames)]) for i in range(delay, len(sent))]
    lag = bench.motion_lag(frames, sent, received, sent[10], 30.0)
    assert lag.mouth_r > 0.9 and abs(lag.mouth_ms - 116.7) < 5, lag
    assert lag.eyes_r > 0.8 and abs(lag.eyes_ms - 116.7) < 5, lag
    assert lag.mouth_id_r > 0.9 and abs(lag.mouth_id_ms - 66.7) < 5, lag
    assert lag.eyes_id_r > 0.8 and abs(lag.eyes_id_ms - 66.7) < 5, lag
