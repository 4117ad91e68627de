"""The neural benchmark script runs end to end (tiny model, CPU dry run) and writes its table and JSON."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[3] / "bench" / "bench_neural.py"


def test_bench_neural_dry_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_neural", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "neural.json"
    assert module.main(["--dry-run", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert set(results["per_frame_ms"]) == {"eager plain", "eager cached", "student"}
    for row in results["per_frame_ms"].values():
        assert set(row) == {"1", "2"} and all(v["ms"] > 0 and v["fps"] > 0 for v in row.values())
    assert set(results["per_network_ms"]["1"]) == {"motion_extractor", "retargeting_mlps", "warping_module",
                                                   "spade_generator"}
    assert "per frame ms" in capsys.readouterr().out
