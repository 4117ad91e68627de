"""The command line at its edges: numbers validated, outputs never over inputs, stored times honoured,
rotated drivers upright, native logs quiet unless -v."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from livepuppet.cli.main import main
from PIL import Image


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("livepuppet: error:")]


@pytest.fixture()
def portrait_png(tmp_path: Path, portrait: np.ndarray) -> Path:
    path = tmp_path / "portrait.png"
    Image.fromarray(portrait).save(path)
    return path


@pytest.mark.parametrize("duration", ["nan", "inf", "0", "-1"])
def test_bad_duration_is_one_line_and_writes_nothing(tmp_path: Path, duration: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo.mp4"
    assert main(["demo", "--duration", duration, "-o", str(out), "-q"]) == 3
    assert len(error_lines(capsys.readouterr().err)) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flag", [["--fps", "nan"], ["--fps", "0"], ["--face", "-1"]])
def test_bad_numeric_flags(tmp_path: Path, portrait_png: Path, driver_video: Path, flag: list[str],
                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o.mp4"
    assert main(["animate", "--source", str(portrait_png), "--driving", str(driver_video), "-o", str(out),
                 "-q", *flag]) == 3
    assert len(error_lines(capsys.readouterr().err)) == 1 and not out.exists()


@pytest.mark.parametrize("target", ["source", "driving", "symlink"])
def test_output_equal_to_an_input_is_refused_and_the_input_kept(tmp_path: Path, portrait_png: Path,
                                                                driver_video: Path, target: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    driver = tmp_path / "driver.mp4"
    driver.write_bytes(driver_video.read_bytes())
    out = {"source": portrait_png, "driving": driver, "symlink": tmp_path / "alias.mp4"}[target]
    if target == "symlink":
        out.symlink_to(driver)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert main(["animate", "--source", str(portrait_png), "--driving", str(driver), "-o", str(out), "-q"]) == 3
    assert "is the input" in error_lines(capsys.readouterr().err)[0]
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("name", ["x.gif", "x"])
def test_unsupported_output_names(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--duration", "0.2", "-o", str(tmp_path / name), "-q"]) == 3
    assert len(error_lines(capsys.readouterr().err)) == 1 and list(tmp_path.iterdir()) == []


def test_webm_output(tmp_path: Path) -> None:
    out = tmp_path / "x.webm"
    assert main(["demo", "--duration", "0.4", "-o", str(out), "-q", "--crop", "--set", "render.crop_size=128"]) == 0
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "vp9"
        assert len(list(container.decode(video=0))) == 10


def test_a_still_image_as_driver(tmp_path: Path, portrait_png: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["animate", "--source", str(portrait_png), "--driving", str(portrait_png),
                 "-o", str(tmp_path / "o.mp4"), "-q"]) == 3
    assert "still image" in error_lines(capsys.readouterr().err)[0]


def motion_file(path: Path, frames: list[dict]) -> Path:
    path.write_text(json.dumps({"format": "livepuppet-motion", "version": 1, "fps": 10, "frames": frames}))
    return path


def test_nan_in_a_motion_file_is_refused_up_front(tmp_path: Path, portrait_png: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    bad = motion_file(tmp_path / "m.json", [{"t": 0.0}, {"t": 0.1, "head": {"yaw": float("nan")}}])
    assert main(["animate", "--source", str(portrait_png), "--motion", str(bad), "-o", str(tmp_path / "o.mp4"),
                 "-q"]) == 3
    assert "frame 1 head: yaw" in error_lines(capsys.readouterr().err)[0]
    assert not (tmp_path / "o.mp4").exists()


def test_motion_file_times_are_honoured(tmp_path: Path, portrait_png: Path, measure_face) -> None:  # type: ignore[no-untyped-def]
    shut, open_ = {"mouth_open": 0.0, "jaw": 0.0}, {"mouth_open": 0.3, "jaw": 0.3}
    motion = motion_file(tmp_path / "m.json", [{"t": 0.0, "expression": shut}, {"t": 0.5, "expression": open_},
                                               {"t": 1.0, "expression": shut}])
    out = tmp_path / "o.mp4"
    assert main(["animate", "--source", str(portrait_png), "--motion", str(motion), "-o", str(out), "-q",
                 "--crop", "--set", "retarget.filter_min_cutoff=100", "--set", "retarget.filter_beta=0"]) == 0
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 15, "three stored instants over 1.5 s at 10 fps, not three frames"
    gaps = [measure_face(frames[i]).lip_gap for i in (3, 8, 13)]
    assert gaps[1] > gaps[0] + 0.05 and gaps[1] > gaps[2] + 0.05, gaps


def test_track_of_a_rotated_phone_video_sees_an_upright_head(tmp_path: Path, driver_video: Path,
                                                            kit_remake) -> None:  # type: ignore[no-untyped-def]
    phone = tmp_path / "phone.mp4"
    kit_remake(driver_video, phone, rotation=270)
    motion = tmp_path / "m.json"
    assert main(["track", str(phone), "-o", str(motion), "-q"]) == 0
    rolls = [f["head"]["roll"] for f in json.loads(motion.read_text())["frames"] if f["face"]]
    assert len(rolls) >= 20 and max(abs(r) for r in rolls) < 8.0, rolls


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GLOG_minloglevel", "TF_CPP_MIN_LOG_LEVEL")}
    return subprocess.run([sys.executable, "-m", "livepuppet", *args], capture_output=True, text=True, timeout=120,
                          env=env)


def test_native_logs_are_quiet_unless_verbose(tmp_path: Path) -> None:
    args = ("demo", "--duration", "0.2", "-q", "--crop", "--set", "render.crop_size=128")
    quiet = run_cli(*args, "-o", str(tmp_path / "a.mp4"))
    loud = run_cli(*args, "-o", str(tmp_path / "b.mp4"), "-v")
    assert quiet.returncode == 0 and loud.returncode == 0, quiet.stderr + loud.stderr
    noise = ("W0000", "I0000", "INFO: Created TensorFlow Lite", "absl::InitializeLog")
    assert not any(n in quiet.stderr for n in noise), quiet.stderr
    assert any(n in loud.stderr for n in noise), loud.stderr


def test_ctrl_c_leaves_no_half_written_file(tmp_path: Path) -> None:
    import signal
    import time

    out = tmp_path / "demo.mp4"
    # SIGINT back to its default in the child: a test run started in the background (nohup, CI runners)
    # inherits it ignored, and Python then never raises KeyboardInterrupt.
    proc = subprocess.Popen([sys.executable, "-m", "livepuppet", "demo", "--duration", "900", "-o", str(out), "-q",
                             "--crop", "--set", "render.crop_size=128"], stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:  # wait until the output is open ...
        if any(".partial" in p.name for p in tmp_path.iterdir()):
            break
        time.sleep(0.05)
    time.sleep(1.0)  # ... and frames are being rendered into it
    assert proc.poll() is None, "the render was still running when interrupted"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr, stderr
    assert list(tmp_path.iterdir()) == [], "nothing half-written is left"
