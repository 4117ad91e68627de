"""The virtual-camera sink (with a fake device: v4l2loopback cannot be loaded here) and ``livepuppet cam``
driven by a video file played as a live camera."""

from __future__ import annotations

import glob
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from livepuppet.engine.face.expression import FaceFeatures
from livepuppet.streaming.devices.virtual_camera import VirtualCameraSink
from livepuppet.streaming.frame_ring import FrameRing


class FakeCamera:
    """Records what it is sent, at a fixed cadence, like pyvirtualcam.Camera."""

    def __init__(self, fps: float, fail_after: int | None = None) -> None:
        self.frames: list[np.ndarray] = []
        self._interval = 1.0 / fps
        self._next = time.monotonic()
        self._fail_after = fail_after
        self.closed = False

    def send(self, frame: np.ndarray) -> None:
        if self._fail_after is not None and len(self.frames) >= self._fail_after:
            raise RuntimeError("device unplugged")
        self.frames.append(frame.copy())

    def sleep_until_next_frame(self) -> None:
        self._next += self._interval
        time.sleep(max(0.0, self._next - time.monotonic()))

    def close(self) -> None:
        self.closed = True


def test_sink_keeps_cadence_and_repeats_when_the_engine_is_late() -> None:
    ring = FrameRing()
    camera = FakeCamera(fps=50)
    sink = VirtualCameraSink(ring, camera, placeholder=np.zeros((8, 8, 3), np.uint8))
    for value in (10, 20, 30):
        ring.write(np.full((8, 8, 3), value, np.uint8), 0, value)
        time.sleep(0.1)  # the engine produces 10 frames/s; the camera runs at 50
    time.sleep(0.1)
    sink.close()
    values = [int(f[0, 0, 0]) for f in camera.frames]
    assert camera.closed
    assert 15 <= len(values) <= 25, len(values)  # ≈ 0.4 s at 50 fps: cadence kept, no stall
    assert sink.repeated >= len(values) - 4
    seen = [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]
    assert seen[-3:] == [10, 20, 30] and values == sorted(values)  # every new frame shown, in order


def test_sink_stops_cleanly_when_the_device_fails() -> None:
    ring = FrameRing()
    camera = FakeCamera(fps=100, fail_after=3)
    sink = VirtualCameraSink(ring, camera, placeholder=np.zeros((4, 4, 3), np.uint8))
    time.sleep(0.2)
    assert len(camera.frames) == 3 and sink.sent == 3
    sink.close()
    assert not any(t.name == "livepuppet-vcam" for t in threading.enumerate())


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "livepuppet", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.realtime
def test_cam_records_the_avatar_from_a_file_camera(tmp_path: Path, driver_video: Path,
                                                   measure_face: Callable[[np.ndarray], FaceFeatures | None]) -> None:
    out = tmp_path / "avatar.mp4"
    result = run_cli("cam", "--camera", str(driver_video), "-o", str(out), "-q")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "camera frames 24" in result.stdout  # the driver has 24 frames, all read
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) >= 40  # ≈ 2 s of driver at the 30 fps camera cadence
    assert frames[0].shape == (512, 512, 3)
    gaps = [m.lip_gap for f in frames[::2] if (m := measure_face(f)) is not None]  # re-tracked avatar
    assert len(gaps) >= 15 and max(gaps) - min(gaps) > 0.08, "the avatar's mouth did not follow the driver's"


def test_cam_explains_what_is_missing(tmp_path: Path) -> None:
    result = run_cli("cam", "--camera", str(tmp_path / "none.mp4"), "-q")
    assert result.returncode == 3 and "--virtual-camera" in result.stderr
    result = run_cli("cam", "--camera", str(tmp_path / "none.mp4"), "-o", str(tmp_path / "o.mp4"), "-q")
    assert result.returncode == 3 and "neither a camera device nor a video file" in result.stderr
    if not glob.glob("/dev/video*"):  # no v4l2loopback on this machine: the message says how to get one
        result = run_cli("cam", "--camera", str(tmp_path / "none.mp4"), "--virtual-camera", "-q")
        assert result.returncode == 3 and "v4l2loopback" in result.stderr, result.stderr[-500:]
