"""The GPU kernel benchmark runs everywhere: without CUDA it says so and times the CPU twins."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_kernels_gpu.py"


@pytest.mark.slow
def test_benchmark_runs_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_kernels_gpu", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "kernels.json"
    assert bench.main(["--iters", "3", "--warmup", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    rows = report["rows"]
    assert rows["mesh render step 512² b8"]["cpu"]["frames"] == 8
    assert all(row["cpu"]["median_ms"] > 0 for row in rows.values() if "cpu" in row)
    printed = capsys.readouterr().out
    if report["gpu"] is None:
        assert "NO CUDA" in printed
    else:
        assert rows["mesh render step 512² b1"]["gpu"]["median_ms"] > 0 and "frames/s" in printed
