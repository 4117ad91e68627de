"""CPU benchmark of the embedded pipeline: per-stage milliseconds and end-to-end frames/s per crop size.

What: for each crop size (``--sizes``, default 256 and 512) on the ``cpu-realtime`` preset, with the
portrait bundled in scikit-image (``data.astronaut()``, 512×512) and the deterministic scripted
performance (talking, blinking, head turning; ``t = i / 25``), it times

* each animate stage on its own: retarget, render (and inside it: target points, draw order, backward
  map, refine map, remap, mouth interior), composite (paste-back into the full portrait); the render
  breakdown is the one ``MeshRenderer.render`` reports;
* track: MediaPipe tracking of a 640×480 driver frame (the portrait's own animated crop, letterboxed, so
  a face is always there) turned into a motion (``Driver.motion``);
* each CPU warp (``--warps``: the compiled one and the OpenCV one), side by side in one run;
* end to end per frame: track + ``animate(full=False)`` (the streaming case, crop output) and
  track + ``animate(full=True)`` (paste-back into the portrait); fps = 1000 / median ms.

Why: to know which stage to optimize and whether a preset keeps up with 25 fps on a given CPU. Times are
``time.perf_counter_ns`` wall times, median and p95 over ``--frames`` frames after ``--warmup`` frames
that are not counted. Absolute numbers mean nothing without the hardware, so the CPU model, core count
and OpenCV thread count are printed and stored with the results (JSON, ``--json``).

Run: ``python bench/bench_pipeline.py [--frames 120] [--warmup 10] [--sizes 256 512] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

os.environ.setdefault("GLOG_minloglevel", "2")  # quiet MediaPipe's C++ logging before it is imported
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2
import numpy as np
from livepuppet.engine.config import EngineConfig, load_config
from livepuppet.engine.motion.retarget import Retargeter
from livepuppet.engine.motion.scripted_motion import scripted_motion
from livepuppet.engine.pipeline import Animator, Driver, open_portrait
from livepuppet.engine.render.compositor import Compositor
from livepuppet.engine.render.mesh_renderer import MeshRenderer
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.types import Motion, VideoFrame
from livepuppet.kernels import jit_warp
from machine import cpu_model  # bench/machine.py (the script's folder is on sys.path)
from skimage import data

PRESET = "cpu-realtime"
FPS_IN = 25.0  # motion / driver frame rate: frame i is at t = i / 25 s
DRIVER_SIZE = (480, 640)  # (height, width) of the simulated webcam frames
DRIVER_CROP = 512  # crop size used to render the driver frames (the same frames for every size benched)
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "pipeline.json"

# Table rows: (key, label); indented labels are parts of the row above them.
STAGE_ROWS: tuple[tuple[str, str], ...] = (
    ("retarget", "retarget"),
    ("render", "render"),
    ("render.target_points", "  target points"),
    ("render.draw_order", "  draw order"),
    ("render.backward_map", "  backward map"),
    ("render.refine_map", "  refine map (lids, lips)"),
    ("render.remap", "  remap"),
    ("render.mouth_interior", "  mouth interior"),
    ("composite", "composite (paste-back)"),
    ("track", "track (driver 640x480)"),
)
E2E_ROWS: tuple[tuple[str, str], ...] = (
    ("stream", "track + animate(full=False)"),
    ("full", "track + animate(full=True)"),
)

R = TypeVar("R")


# --------------------------------------------------------------------------------------------- timing


def timed(fn: Callable[..., R], *args: Any, **kwargs: Any) -> tuple[R, int]:
    """``fn(*args, **kwargs)`` and its wall time in nanoseconds."""
    start = time.perf_counter_ns()
    result = fn(*args, **kwargs)
    return result, time.perf_counter_ns() - start


@dataclass
class Samples:
    """Per-stage samples in nanoseconds, one per counted frame."""

    ns: dict[str, list[int]] = field(default_factory=dict)

    def add(self, key: str, value_ns: int) -> None:
        self.ns.setdefault(key, []).append(value_ns)

    def summary(self) -> dict[str, dict[str, float]]:
        return {key: summarize(values) for key, values in self.ns.items()}


def summarize(values_ns: list[int]) -> dict[str, float]:
    """Median and p95 in milliseconds (and the sample count)."""
    ms = np.asarray(values_ns, dtype=np.float64) / 1e6
    return {"median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)), "n": int(ms.size)}


# --------------------------------------------------------------------------------------------- machine


def machine_info() -> dict[str, Any]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "cv2_threads": cv2.getNumThreads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "mediapipe": _version("mediapipe"),
    }


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


# --------------------------------------------------------------------------------------------- inputs


def config_for(size: int, warp: str = "auto") -> EngineConfig:
    return load_config(PRESET, [f"render.crop_size={size}", f"render.cpu_warp={warp!r}"])


def motion_at(i: int) -> Motion:
    return scripted_motion(i / FPS_IN, i)


def letterbox(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Fit ``pixels`` (S, S, 3) into a black ``size`` (h, w) frame, centered, aspect kept."""
    h, w = size
    side = min(h, w)
    out = np.zeros((h, w, 3), dtype=np.uint8)
    y0, x0 = (h - side) // 2, (w - side) // 2
    out[y0:y0 + side, x0:x0 + side] = cv2.resize(pixels, (side, side), interpolation=cv2.INTER_AREA)
    return out


def driver_frames(image: np.ndarray, count: int) -> list[VideoFrame]:
    """Simulated webcam: the portrait animated by the scripted motion, letterboxed to 640×480."""
    cfg = config_for(DRIVER_CROP)
    animator = Animator(open_portrait(image, cfg), cfg)
    frames = []
    for i in range(count):
        crop = animator.animate(motion_at(i), full=False).crop.pixels
        frames.append(VideoFrame(letterbox(crop, DRIVER_SIZE), pts=round(i * 1e9 / FPS_IN), seq=i))
    return frames


# --------------------------------------------------------------------------------------------- benches


def bench_stages(source: PreparedSource, cfg: EngineConfig, frames: int, warmup: int) -> Samples:
    """Retarget, render (whole, and its steps as the renderer reports them) and composite, each timed on
    its own, as Animator builds them."""
    retargeter = Retargeter(source, cfg.retarget)
    renderer = MeshRenderer(source, cfg.render)
    compositor = Compositor(source, cfg.composite)
    samples = Samples()
    for i in range(warmup + frames):
        keep = i >= warmup
        target, t_retarget = timed(retargeter.retarget, motion_at(i))
        steps: list[tuple[str, int]] = []
        crop, t_render = timed(renderer.render, target, steps)
        if keep:
            for name, ns in steps:
                samples.add(f"render.{name}", ns)
        _, t_composite = timed(compositor.composite, crop)
        if keep:
            samples.add("retarget", t_retarget)
            samples.add("render", t_render)
            samples.add("composite", t_composite)
    return samples


def bench_end_to_end(source: PreparedSource, cfg: EngineConfig, drivers: list[VideoFrame],
                     warmup: int) -> tuple[Samples, int]:
    """Per driver frame: track, then animate with and without paste-back (two animators, so each sees every
    motion once). Returns the samples and how many counted frames had a tracked face."""
    stream = Animator(source, cfg)
    full = Animator(source, cfg)
    samples = Samples()
    found = 0
    with Driver(cfg) as driver:
        for i, frame in enumerate(drivers):
            motion, t_track = timed(driver.motion, frame)
            _, t_stream = timed(stream.animate, motion, full=False)
            _, t_full = timed(full.animate, motion, full=True)
            if i >= warmup:
                found += motion.face_found
                samples.add("track", t_track)
                samples.add("animate_stream", t_stream)
                samples.add("animate_full", t_full)
                samples.add("stream", t_track + t_stream)
                samples.add("full", t_track + t_full)
    return samples, found


def bench_size(image: np.ndarray, size: int, warp: str, drivers: list[VideoFrame], frames: int,
               warmup: int) -> dict[str, Any]:
    cfg = config_for(size, warp)
    source, t_prepare = timed(open_portrait, image, cfg)
    stages = bench_stages(source, cfg, frames, warmup)
    e2e, found = bench_end_to_end(source, cfg, drivers, warmup)
    summary = {**stages.summary(), **e2e.summary()}
    end_to_end = {key: {**summary[key], "fps": 1000.0 / summary[key]["median_ms"]} for key, _ in E2E_ROWS}
    return {
        "crop_size": size,
        "cpu_warp": warp,
        "prepare_ms": t_prepare / 1e6,
        "mesh": {"points": len(source.mesh.points), "triangles": len(source.mesh.triangles)},
        "stages": {key: summary[key] for key, _ in STAGE_ROWS},
        "animate": {"full_false": summary["animate_stream"], "full_true": summary["animate_full"]},
        "end_to_end": end_to_end,
        "track_found": found,
    }


# --------------------------------------------------------------------------------------------- report


def _stat_cells(stats: list[dict[str, float]]) -> list[str]:
    """Median and p95 cells, one pair per crop size."""
    return [f"{st[k]:.2f}" for st in stats for k in ("median_ms", "p95_ms")]


def _single_cells(values: list[float]) -> list[str]:
    """One number per crop size, in the median column (p95 left blank)."""
    return [cell for v in values for cell in (f"{v:.1f}", "")]


def format_table(results: list[dict[str, Any]]) -> str:
    """Rows: stages, then end to end and fps; columns: median and p95 per crop size."""
    header = ["stage (ms)"] + [f"{r['crop_size']} {r['cpu_warp']} {k}" for r in results for k in ("median", "p95")]
    rows = [["prepare (open_portrait, once)", *_single_cells([r["prepare_ms"] for r in results])]]
    rows += [[label, *_stat_cells([r["stages"][key] for r in results])] for key, label in STAGE_ROWS]
    rows += [[f"animate(full={flag})", *_stat_cells([r["animate"][key] for r in results])]
             for key, flag in (("full_false", False), ("full_true", True))]
    rows += [[f"end to end: {label}", *_stat_cells([r["end_to_end"][key] for r in results])] for key, label in E2E_ROWS]
    rows += [[f"fps (1000/median): {label}", *_single_cells([r["end_to_end"][key]["fps"] for r in results])]
             for key, label in E2E_ROWS]
    widths = [max(len(row[c]) for row in [header, *rows]) for c in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[0]) if c == 0 else cell.rjust(widths[c]) for c, cell in enumerate(row))
             for row in [header, *rows]]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def format_header(machine: dict[str, Any], frames: int, warmup: int) -> str:
    return (f"CPU: {machine['cpu_model']}, {machine['cores']} cores ({machine['cores_usable']} usable), "
            f"cv2.getNumThreads() = {machine['cv2_threads']}\n"
            f"python {machine['python']}, numpy {machine['numpy']}, opencv {machine['opencv']}, "
            f"mediapipe {machine['mediapipe']}\n"
            f"preset {PRESET}, portrait skimage astronaut 512x512, {frames} frames (+{warmup} warm-up, not counted), "
            f"driver {DRIVER_SIZE[1]}x{DRIVER_SIZE[0]}")


def format_notes(results: list[dict[str, Any]], frames: int) -> str:
    notes = ["stage rows: scripted motion; animate and end-to-end rows: motion tracked from the driver frames "
             "(relative to its first frame, so smaller), hence they are not the sum of the stage rows"]
    for r in results:
        notes.append(f"crop {r['crop_size']} ({r['cpu_warp']} warp): mesh {r['mesh']['points']} points / "
                     f"{r['mesh']['triangles']} triangles; face tracked in {r['track_found']}/{frames} driver frames")
    return "\n".join(notes)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--frames", type=int, default=120, help="counted frames per size (default 120)")
    parser.add_argument("--warmup", type=int, default=10, help="warm-up frames, not counted (default 10)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="crop sizes (default 256 512)")
    parser.add_argument("--warps", nargs="+", choices=["jit", "opencv"], default=None,
                        help="CPU warps to compare side by side (default: jit and opencv; opencv without numba)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"results file (default {DEFAULT_JSON})")
    args = parser.parse_args(argv)
    if args.frames < 1 or args.warmup < 0:
        parser.error("--frames must be >= 1 and --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    machine = machine_info()
    print(format_header(machine, args.frames, args.warmup), flush=True)
    image = data.astronaut()
    drivers = driver_frames(image, args.warmup + args.frames)
    warps = args.warps or (["jit", "opencv"] if jit_warp.available() else ["opencv"])
    results = [bench_size(image, size, warp, drivers, args.frames, args.warmup)
               for size in args.sizes for warp in warps]
    print()
    print(format_table(results))
    print()
    print(format_notes(results, args.frames))
    report = {"machine": machine,
              "settings": {"preset": PRESET, "frames": args.frames, "warmup": args.warmup, "sizes": args.sizes,
                           "warps": warps,
                           "portrait": "skimage.data.astronaut (512x512)", "motion": "scripted_motion(i / 25)",
                           "driver_frame": f"{DRIVER_SIZE[1]}x{DRIVER_SIZE[0]} letterboxed animated crop"},
              "results": results}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
