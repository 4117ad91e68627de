"""What the benches say about the machine they ran on (imported by the bench scripts, which run from here)."""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's ``model name`` from /proc/cpuinfo (Linux), else what the platform module says."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def write_results(path: Path, rows: Sequence[Any]) -> None:
    """A bench's result rows (dataclasses) as a JSON list at ``path`` (its folder made), and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    print(f"wrote {path}")
