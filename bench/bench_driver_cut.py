"""A driver video that cuts to another person: does the avatar's mouth still follow the driver's?

What: two real portraits (the astronaut bundled with scikit-image, Grace Hopper shipped with matplotlib)
each perform the scripted talking segment (mesh renderer, no smoothing), 3.8 s each, joined by a hard cut and
re-encoded with camera-like noise and H.264 (30 fps, 512×512). The astronaut portrait is driven by it; the
driver frames and the avatar frames are re-tracked (MediaPipe, each image on its own) and the mouth opening
(inner-lip gap) of the avatar is correlated with the driver's, per shot (the first 0.5 s after the cut left
out), and the avatar's mouth while the driver's rests (its 20 % most closed frames after the cut) is compared
with the portrait's own rest ("rest offset": 0 = right; negative = pressed shut, positive = held open). The
driver shows either each portrait's whole picture (own framing: the face jumps in size and place at the cut)
or their face crops (same framing: only the person changes). Variants: the default driver (cut detection
on) and the same with cut detection off, which keeps the first person's neutral (the behaviour before).

Run: ``python bench/bench_driver_cut.py [--json PATH]`` (about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
import av
import cv2
import numpy as np
from livepuppet.engine.config import DriverConfig, EngineConfig, TrackerConfig
from livepuppet.engine.face.expression import FaceFeatures
from livepuppet.engine.face.tracker import FaceTracker
from livepuppet.engine.media.video_io import read_video
from livepuppet.engine.motion.motion_filter import unfiltered
from livepuppet.engine.motion.scripted_motion import scripted_motion
from livepuppet.engine.pipeline import Animator, Driver, open_portrait
from livepuppet.engine.types import VideoFrame
from machine import write_results  # bench/machine.py
from portraits import grace_hopper  # bench/portraits.py (the script's folder is on sys.path)
from skimage import data

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "driver_cut.json"
FPS = 30
TALK_S = (1.6, 5.4)
SETTLE_S = 0.5


@dataclass
class Row:
    framing: str
    variant: str
    corr_first_shot: float
    corr_after_cut: float
    rest_offset_after_cut: float  # avatar lip gap at the driver's resting mouth minus the portrait's own
    neutral_changes: int


def talking(portrait: np.ndarray, config: EngineConfig, full: bool = False) -> list[np.ndarray]:
    """The portrait performing the talking segment: its face crop (same framing for any portrait) or the
    whole picture cut to 512×512 (the portrait's own framing)."""
    animator = Animator(open_portrait(portrait, config), replace(config, retarget=unfiltered(config.retarget)))
    n = int((TALK_S[1] - TALK_S[0]) * FPS)
    out = []
    for i in range(n):
        frame = animator.animate(scripted_motion(TALK_S[0] + i / FPS), full=full)
        pixels = frame.full.pixels if full and frame.full is not None else frame.crop.pixels
        out.append(np.ascontiguousarray(cv2.resize(pixels[:512, :512], (512, 512))))
    return out


def encode(path: Path, frames: list[np.ndarray]) -> Path:
    rng = np.random.default_rng(0)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width = stream.height = 512
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "23"}
        for f in frames:
            noisy = np.clip(f.astype(np.float32) * (1 + 0.01 * rng.standard_normal())
                            + rng.normal(0, 4.0, f.shape), 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(noisy, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def lip_gap(tracker: FaceTracker, pixels: np.ndarray) -> float:
    features = FaceFeatures.of_track(tracker.track(VideoFrame(np.ascontiguousarray(pixels), 0, 0)))
    return float("nan") if features is None else features.lip_gap


def corr(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return round(float(np.corrcoef(a[ok], b[ok])[0, 1]), 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    config = EngineConfig()
    source = open_portrait(data.astronaut(), config)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, FaceTracker(TrackerConfig(), static=True) as tracker:
        rest = lip_gap(tracker, source.crop)
        for framing, full in (("own framing (whole picture)", True), ("same framing (face crops)", False)):
            first, second = talking(data.astronaut(), config, full), talking(grace_hopper()[30:542], config, full)
            cut = len(first)
            video = encode(Path(tmp) / "cut.mp4", first + second)
            driven = list(read_video(video))
            driver_gap = np.array([lip_gap(tracker, f.pixels) for f in driven])
            after = slice(cut + int(SETTLE_S * FPS), None)
            resting = np.zeros(len(driven), bool)
            resting[after] = driver_gap[after] <= np.nanpercentile(driver_gap[after], 20)
            for name, cfg in (("cut detection on (default)", config),
                              ("cut detection off (before)", replace(config, driver=DriverConfig(
                                  max_scale_jump=10.0, max_shift_jump=100.0, max_look_jump=0.0)))):
                animator = Animator(source, cfg)
                with Driver(cfg) as driver:
                    avatar_gap = np.array([lip_gap(tracker, animator.animate(driver.motion(f), full=False)
                                                   .crop.pixels) for f in driven])
                    changes = driver._estimator.neutral_changes
                rows.append(Row(framing, name, corr(driver_gap[:cut], avatar_gap[:cut]),
                                corr(driver_gap[after], avatar_gap[after]),
                                round(float(np.nanmedian(avatar_gap[resting])) - rest, 3), changes))
    print("\nAvatar mouth vs driver mouth (re-tracked lip gap), astronaut → Grace Hopper cut at 3.8 s")
    print(f"{'driver':<30}{'variant':<30}{'r 1st shot':>11}{'r after':>9}{'rest offset':>13}{'new neutrals':>14}")
    for r in rows:
        print(f"{r.framing:<30}{r.variant:<30}{r.corr_first_shot:>11}{r.corr_after_cut:>9}"
              f"{r.rest_offset_after_cut:>13}{r.neutral_changes:>14}")
    write_results(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
