"""Paste-back into the full portrait: how sharp what moves stays outside the face, and what it costs.

What: for each real portrait framing (``bench/portraits.py``: waist-up, head and shoulders, close-up), the
scripted performance (talking, blinking, head turns and nods; 25 fps) and then the same with the driver
leaning in (head scale 1.2–1.33, drifting sideways and down), animated into the full portrait twice per
frame, alternating: with ``composite.full_resolution`` (outside the face, the photo warped once at its own
resolution by the renderer's map) and without it (the crop pasted back). For each it reports

* *neck sharpness*: gradient energy in a band along the neck (just below the chin to the crop box's bottom,
  a neck's width) in the output over the same in the photo, mean and worst over the frames (1 = as sharp
  as the photo; a blurred collar reads below, a crease above);
* *composite ms*: the paste-back's own time per frame, median and p95 (render excluded).

Why: the paste-back resampled everything that moved twice (photo → crop → photo), softening collars and
hair whenever the head moved. Wall times are ``time.perf_counter_ns``; the CPU is printed with them.

Run: ``python bench/bench_paste_back.py [--seconds 4] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")  # quiet MediaPipe's C++ logging before it is imported

import numpy as np
from livepuppet.engine.config import EngineConfig, load_config
from livepuppet.engine.face import topology as ft
from livepuppet.engine.motion.scripted_motion import scripted_motion
from livepuppet.engine.pipeline import Animator, open_portrait
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.types import Motion
from machine import cpu_model, write_results  # bench/machine.py (the script's folder is on sys.path)
from portraits import framings

FPS = 25.0
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "paste_back.json"


@dataclass(frozen=True, slots=True)
class Row:
    portrait: str
    box_side: int
    motion: str
    full_resolution: bool
    neck_mean: float
    neck_worst: float  # the frame furthest from 1
    composite_ms_p50: float
    composite_ms_p95: float


def neck_band(source: PreparedSource) -> tuple[slice, slice]:
    """Photo rows from just below the chin to past the crop box's bottom, columns a neck's width around it."""
    box = source.box
    k = box.side / source.crop_size
    chin = source.landmarks[ft.CHIN, :2] * k + np.array([box.x0, box.y0])
    iod = source.pose.scale * k
    h, w = source.image.shape[:2]
    rows = slice(int(chin[1] + 0.15 * iod), int(min(h, box.y0 + box.side + 0.5 * iod)))
    return rows, slice(int(max(0, chin[0] - 0.6 * iod)), int(min(w, chin[0] + 0.6 * iod)))


def energy(pixels: np.ndarray, band: tuple[slice, slice]) -> float:
    gy, gx = np.gradient(pixels.astype(np.float32).mean(axis=2))
    return float(np.mean((gx * gx + gy * gy)[band]))


def leaning(t: float) -> Motion:
    """The scripted performance with the driver leaning in, drifting sideways and down as a torso does."""
    m = scripted_motion(t)
    lean = 0.5 - 0.5 * np.cos(2 * np.pi * t / 4.0)
    head = replace(m.head, scale=m.head.scale * (1.2 + 0.13 * lean), tx=m.head.tx + 0.2 * np.sin(np.pi * t / 2.0),
                   ty=m.head.ty + 0.1 * lean)
    return replace(m, head=head)


def run(name: str, image: np.ndarray, config: EngineConfig, seconds: float) -> list[Row]:
    source = open_portrait(image, config)
    band = neck_band(source)
    reference = energy(source.image, band)
    rows = []
    for label, motion in (("scripted performance", scripted_motion), ("leaning in", leaning)):
        configs = {on: replace(config, composite=replace(config.composite, full_resolution=on)) for on in (True, False)}
        animators = {on: Animator(source, c) for on, c in configs.items()}
        ratios: dict[bool, list[float]] = {True: [], False: []}
        times: dict[bool, list[float]] = {True: [], False: []}
        for i in range(int(seconds * FPS)):
            m = motion(1.6 + i / FPS)
            for on in ((True, False) if i % 2 else (False, True)):
                out = animators[on].animate(m)
                assert out.full is not None
                stages = dict(out.full.stage_ns)
                times[on].append((stages["composite"] - stages["render"]) / 1e6)
                ratios[on].append(energy(out.full.pixels, band) / reference)
        for on in (True, False):
            r, ms = np.array(ratios[on]), np.array(times[on][5:])
            rows.append(Row(name, source.box.side, label, on, round(float(r.mean()), 3),
                            round(float(r[np.argmax(np.abs(r - 1.0))]), 3),
                            round(float(np.median(ms)), 2), round(float(np.percentile(ms, 95)), 2)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="per motion, at 25 fps")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    config = load_config("cpu-realtime")
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; preset cpu-realtime, crop {config.render.crop_size}")
    rows = []
    started = time.perf_counter()
    for name, image in framings().items():
        rows.extend(run(name, image, config, args.seconds))
        print(f"  {name}: done ({time.perf_counter() - started:.0f} s)", flush=True)
    print("| portrait (box px) | motion | full resolution | neck sharpness mean (worst) | composite ms p50 (p95) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.portrait} ({r.box_side}) | {r.motion} | {'on' if r.full_resolution else 'off'} | "
              f"{r.neck_mean:.3f} ({r.neck_worst:.3f}) | {r.composite_ms_p50:.2f} ({r.composite_ms_p95:.2f}) |")
    write_results(args.json, rows)


if __name__ == "__main__":
    main()
