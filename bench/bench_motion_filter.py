"""Motion filters offline: still-face landmark jitter against motion lag, per filter setting, in one run.

What: two driver videos made from real pixels, with camera-like sensor noise (Gaussian, 4 levels), a 1 %
exposure flicker and H.264 (crf 23), 30 fps, 512×512: a *still* one (the bundled astronaut photo, 3 s) and
a *moving* one (the same portrait performing the scripted talking segment: ~4 Hz syllables, two blinks,
head turns; rendered without smoothing). Both are tracked once (MediaPipe, tracking mode); every filter
setting then replays the same tracks through the estimator and retargeter.

- jitter: per landmark, the standard deviation (x, y) of the avatar's target landmarks over the still video
  (crop pixels of the 512² portrait crop; the first 10 frames skipped), mean and p95 over the 478 points.
- lag: for yaw, mouth opening and mean eye opening, the shift (ms) that best aligns the filtered signal with
  the unfiltered one on the moving video (normalized cross-correlation, linear interpolation, 1 ms grid).
  Negative = the filter leads.

Run: ``python bench/bench_motion_filter.py [--json PATH]`` (about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
import av
import numpy as np
from livepuppet.engine.config import EngineConfig, RetargetConfig
from livepuppet.engine.face.geometry import estimate_pose
from livepuppet.engine.media.video_io import read_video
from livepuppet.engine.motion.estimator import MotionEstimator
from livepuppet.engine.motion.kalman import ConstantVelocityKalman
from livepuppet.engine.motion.motion_filter import channel_settings, unfiltered
from livepuppet.engine.motion.one_euro import OneEuroFilter
from livepuppet.engine.motion.retarget import Retargeter
from livepuppet.engine.motion.scripted_motion import scripted_motion
from livepuppet.engine.pipeline import Animator, Driver, open_portrait
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.types import Expression, FaceTrack, HeadMotion
from machine import cpu_model  # bench/machine.py (the script's folder is on sys.path)
from skimage import data

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "motion_filter.json"
FPS = 30
SKIP = 10
TALK_S = (1.6, 5.4)
FAST = np.array([n in ("eye_open_l", "eye_open_r", "mouth_open", "jaw") for n in Expression.names()])


@dataclass
class Row:
    name: str
    jitter_mean_px: float
    jitter_p95_px: float
    lag_yaw_ms: float
    lag_mouth_ms: float
    lag_eyes_ms: float


def camera_like_video(path: Path, images: Sequence[np.ndarray], noise: float = 4.0, crf: int = 23) -> Path:
    """``images`` as H.264 video with Gaussian sensor noise and a 1 % exposure flicker (seeded)."""
    rng = np.random.default_rng(0)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = images[0].shape[1], images[0].shape[0], "yuv420p"
        stream.options = {"crf": str(crf)}
        for image in images:
            noisy = np.clip(image.astype(np.float32) * (1.0 + 0.01 * rng.standard_normal())
                            + rng.normal(0.0, noise, image.shape), 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(noisy, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def track(path: Path, config: EngineConfig) -> list[FaceTrack]:
    with Driver(config) as driver:
        return [driver._tracker.track(frame) for frame in read_video(path)]


class _Split:
    """Head channels through one filter, expression channels through another (both see the same vector)."""

    def __init__(self, head: Callable[[np.ndarray, float], np.ndarray],
                 face: Callable[[np.ndarray, float], np.ndarray]) -> None:
        self._head, self._face = head, face

    def __call__(self, head: HeadMotion, expression: Expression, t: float) -> tuple[HeadMotion, Expression]:
        h = self._head(np.array(list(asdict(head).values())), t)
        e = self._face(expression.as_array(), t)
        return HeadMotion(*(float(v) for v in h)), Expression.from_array(e)


def kalman_variant(config: RetargetConfig, accel: float, noise: float) -> Callable[[], object]:
    cutoff, beta, _, d_cutoff = channel_settings(config)
    to_deg = np.array([np.pi / 180] * 3 + [1.0] * 3)

    def make() -> object:
        head = OneEuroFilter(cutoff[:6], beta[:6] * to_deg, d_cutoff[:6])
        face = ConstantVelocityKalman(np.where(FAST, accel, accel / 10), noise)
        return _Split(head, face)
    return make


def landmark_filtered(tracks: list[FaceTrack], min_cutoff: float, beta: float) -> list[FaceTrack]:
    """Filter where the tracker's noise is: the raw landmarks (pixels), then refit the pose."""
    f = OneEuroFilter(min_cutoff, beta, 1.0)
    out = []
    for t in tracks:
        if t.landmarks is None:
            out.append(t)
            continue
        lm = f(t.landmarks.astype(np.float64), t.pts / 1e9).astype(np.float32)
        out.append(replace(t, landmarks=lm, pose=estimate_pose(lm)))
    return out


def replay(tracks: list[FaceTrack], source: PreparedSource, config: RetargetConfig,
           make_filter: Callable[[], object] | None) -> tuple[np.ndarray, np.ndarray]:
    """Target landmarks (T, 478, 3) and (yaw, mouth_open, eye_open) per frame (T, 3)."""
    estimator, retargeter = MotionEstimator(keep_deltas=False), Retargeter(source, config)
    if make_filter is not None:
        retargeter._filter = make_filter()  # type: ignore[assignment]
    points, signals = [], []
    for t in tracks:
        target = retargeter.retarget(estimator.estimate(t))
        points.append(target.landmarks)
        e = target.expression
        signals.append((target.head.yaw, e.mouth_open, 0.5 * (e.eye_open_l + e.eye_open_r)))
    return np.array(points), np.array(signals)


def lag_ms(ref: np.ndarray, sig: np.ndarray) -> float:
    t = np.arange(len(ref)) / FPS
    grid = np.arange(0.0, t[-1], 0.001)
    a, b = np.interp(grid, t, ref), np.interp(grid, t, sig)
    a, b = a - a.mean(), b - b.mean()
    best, best_score = 0, -np.inf
    for lag in range(-100, 301):
        x, y = (a[:len(a) - lag], b[lag:]) if lag >= 0 else (a[-lag:], b[:len(b) + lag])
        score = float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))
        if score > best_score:
            best, best_score = lag, score
    return float(best)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    config = EngineConfig()
    portrait = data.astronaut()
    source = open_portrait(portrait, config)
    base = config.retarget
    raw_retarget = unfiltered(base)
    renderer = Animator(source, replace(config, retarget=raw_retarget))
    moving_frames = [renderer.animate(scripted_motion(TALK_S[0] + i / FPS), full=False).crop.pixels.copy()
                     for i in range(int((TALK_S[1] - TALK_S[0]) * FPS))]
    with tempfile.TemporaryDirectory() as tmp:
        print("encoding and tracking the still and the moving driver videos …", flush=True)
        still = track(camera_like_video(Path(tmp) / "still.mp4", [portrait] * (3 * FPS)), config)
        moving = track(camera_like_video(Path(tmp) / "moving.mp4", moving_frames), config)

    old = replace(base, filter_min_cutoff=1.5, filter_beta=0.3, filter_d_cutoff=1.0, filter_lead=0.0,
                  head_filter_ratio=1.0, slow_filter_ratio=1.0, head_filter_beta=0.3 * 180 / np.pi)
    variants: list[tuple[str, RetargetConfig, Callable[[], object] | None, bool]] = [
        ("no filter", raw_retarget, None, False),
        ("before: One Euro 1.5 Hz, β 0.3, all channels", old, None, False),
        ("per channel (head 0.3, mouth/lids 5, rest 1.5 Hz), no lead", replace(base, filter_lead=0.0), None, False),
        ("per channel + lead 0.5", replace(base, filter_lead=0.5), None, False),
        ("per channel + lead 1.0 (default)", base, None, False),
        ("head 0.5 Hz", replace(base, head_filter_ratio=0.1), None, False),
        ("head 1.0 Hz", replace(base, head_filter_ratio=0.2), None, False),
        ("head β 1.5 (slower to follow)", replace(base, head_filter_beta=1.5), None, False),
        ("head β 8 (quicker to follow)", replace(base, head_filter_beta=8.0), None, False),
        ("mouth/lids 3 Hz", replace(base, filter_min_cutoff=3.0, head_filter_ratio=0.1,
                                   slow_filter_ratio=0.5), None, False),
        ("head speed filter 4 Hz (before)", replace(base, head_filter_d_cutoff=4.0), None, False),
        ("head speed filter 0.5 Hz", replace(base, head_filter_d_cutoff=0.5), None, False),
        ("mouth/lids 8 Hz", replace(base, filter_min_cutoff=8.0, head_filter_ratio=0.3 / 8.0,
                                   slow_filter_ratio=1.5 / 8.0), None, False),
        ("head per channel, face: constant-velocity Kalman", base, kalman_variant(base, 60.0, 0.01), False),
        ("landmarks filtered (1 Hz, β 0.05 px⁻¹), coefficients raw", raw_retarget, None, True),
    ]
    rows = []
    _, reference = replay(moving, source, raw_retarget, None)
    for name, retarget, make, on_landmarks in variants:
        s_tracks = landmark_filtered(still, 1.0, 0.05) if on_landmarks else still
        m_tracks = landmark_filtered(moving, 1.0, 0.05) if on_landmarks else moving
        points, _ = replay(s_tracks, source, retarget, make)
        per_point = np.sqrt(points[SKIP:, :, :2].var(axis=0).sum(axis=-1))
        _, signals = replay(m_tracks, source, retarget, make)
        rows.append(Row(name, round(float(per_point.mean()), 3), round(float(np.percentile(per_point, 95)), 3),
                        *(lag_ms(reference[:, k], signals[:, k]) for k in range(3))))
    cpu = cpu_model()
    print(f"\nStill-face jitter vs motion lag, {len(still)} still + {len(moving)} moving frames at {FPS} fps "
          f"({os.cpu_count()} cores, {cpu}, {sys.version.split()[0]})")
    print(f"{'filter':<62}{'jitter px':>10}{'p95':>7}{'yaw ms':>8}{'mouth ms':>10}{'eyes ms':>9}")
    for r in rows:
        print(f"{r.name:<62}{r.jitter_mean_px:>10}{r.jitter_p95_px:>7}{r.lag_yaw_ms:>8g}{r.lag_mouth_ms:>10g}"
              f"{r.lag_eyes_ms:>9g}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"cpu": cpu, "cores": os.cpu_count(), "rows": [asdict(r) for r in rows]},
                                    indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
