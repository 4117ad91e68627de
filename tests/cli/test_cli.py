"""The command line end to end: real files in, real MP4s out, one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from livepuppet.cli.main import main
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.face.expression import FaceFeatures
from livepuppet.engine.face.tracker import FaceTracker
from livepuppet.engine.types import VideoFrame
from PIL import Image


def decode(path: Path) -> tuple[list[np.ndarray], float, bool]:
    with av.open(str(path)) as c:
        rate = float(c.streams.video[0].average_rate)
        has_audio = bool(c.streams.audio)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return frames, rate, has_audio


def test_demo_writes_a_moving_video(tmp_path: Path) -> None:
    out = tmp_path / "demo.mp4"
    assert main(["demo", "-o", str(out), "--duration", "2", "-q"]) == 0
    frames, rate, _ = decode(out)
    assert len(frames) == 50 and rate == pytest.approx(25.0)
    assert frames[0].shape == (512, 512, 3)
    diffs = [np.abs(frames[i].astype(int) - frames[0].astype(int)).mean() for i in (10, 25, 49)]
    assert min(diffs) > 1.0, "the face moves"


def test_animate_from_driver_video_keeps_rate_count_and_audio(tmp_path: Path, driver_video: Path,
                                                              static_tracker: FaceTracker) -> None:
    portrait = tmp_path / "portrait.png"
    from skimage import data

    Image.fromarray(data.astronaut()).save(portrait)
    out = tmp_path / "out.mp4"
    assert main(["animate", "--source", str(portrait), "--driving", str(driver_video), "-o", str(out), "-q",
                 "--crop"]) == 0
    frames, rate, has_audio = decode(out)
    assert len(frames) == 24 and rate == pytest.approx(12.0) and has_audio
    # The driver's mouth is open around frames 3 and 15 and closed around 9 and 21: so must the avatar's be.
    gaps = []
    for i in (9, 4, 21, 16):
        features = FaceFeatures.of_track(static_tracker.track(VideoFrame(frames[i], 0, 0)))
        assert features is not None
        gaps.append(features.lip_gap)
    assert gaps[1] - gaps[0] > 0.05 and gaps[3] - gaps[2] > 0.05, gaps


def test_track_then_animate_from_motion(tmp_path: Path, driver_video: Path) -> None:
    motion = tmp_path / "motion.json"
    assert main(["track", str(driver_video), "-o", str(motion), "-q"]) == 0
    data = json.loads(motion.read_text())
    assert data["format"] == "livepuppet-motion" and len(data["frames"]) == 24
    assert all(f["face"] for f in data["frames"])
    assert "pixels" not in motion.read_text()
    opens = [f["expression"]["mouth_open"] for f in data["frames"]]
    assert min(opens[2:5]) > max(opens[7:12]) + 0.08, "tracked mouth follows the driver"
    portrait = tmp_path / "portrait.jpg"
    from skimage import data as skdata

    Image.fromarray(skdata.astronaut()).save(portrait)
    out = tmp_path / "replay.mp4"
    assert main(["animate", "--source", str(portrait), "--motion", str(motion), "-o", str(out), "-q"]) == 0
    frames, rate, has_audio = decode(out)
    assert len(frames) == 24 and rate == pytest.approx(12.0) and not has_audio


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "livepuppet", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case", ["not-an-image", "no-face", "tiny", "missing", "corrupt-video", "bad-config"])
def test_bad_input_gives_one_line_error(tmp_path: Path, case: str, driver_video: Path, config: EngineConfig) -> None:
    good = tmp_path / "good.png"
    from skimage import data

    Image.fromarray(data.astronaut()).save(good)
    out = str(tmp_path / "o.mp4")
    if case == "not-an-image":
        bad = tmp_path / "x.jpg"
        bad.write_text("plain text")
        args = ["animate", "--source", str(bad), "--driving", str(driver_video), "-o", out]
    elif case == "no-face":
        bad = tmp_path / "wall.png"
        Image.fromarray(np.full((300, 300, 3), 128, np.uint8)).save(bad)
        args = ["animate", "--source", str(bad), "--driving", str(driver_video), "-o", out]
    elif case == "tiny":
        bad = tmp_path / "tiny.png"
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(bad)
        args = ["demo", "--source", str(bad), "-o", out]
    elif case == "missing":
        args = ["animate", "--source", str(tmp_path / "nope.png"), "--driving", str(driver_video), "-o", out]
    elif case == "corrupt-video":
        bad = tmp_path / "broken.mp4"
        bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
        args = ["animate", "--source", str(good), "--driving", str(bad), "-o", out]
    else:
        args = ["demo", "--set", "render.crop_sise=3", "-o", out]
    result = run_cli(*args, "-q")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("livepuppet: error:")]
    assert len(errors) == 1, result.stderr
