"""The avatar as a camera for video calls: a sink that feeds a virtual camera at a steady frame rate.

The sink runs on its own thread, reads the newest avatar frame from an output ring and sends it (or the
last one again when the engine is late) at the camera's cadence. The device is pyvirtualcam's (Linux:
v4l2loopback; Windows/macOS: OBS's virtual camera); anything with the same three methods works, which
is how the tests drive it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import numpy as np
from livepuppet.engine.media.video_io import VideoWriter
from livepuppet.errors import DependencyError
from livepuppet.streaming.frame_ring import FrameRing

log = logging.getLogger(__name__)


class CameraDevice(Protocol):
    """What the sink needs of a virtual camera (pyvirtualcam.Camera has exactly this)."""

    def send(self, frame: np.ndarray) -> None: ...

    def sleep_until_next_frame(self) -> None: ...

    def close(self) -> None: ...


def open_virtual_camera(width: int, height: int, fps: float, device: str | None = None) -> CameraDevice:
    """Open a pyvirtualcam camera, or explain what is missing."""
    try:
        import pyvirtualcam
    except ImportError as exc:
        raise DependencyError("the virtual camera needs pyvirtualcam: pip install 'livepuppet[vcam]'") from exc
    try:
        return pyvirtualcam.Camera(width=width, height=height, fps=fps, device=device)  # type: ignore[no-any-return]
    except RuntimeError as exc:
        raise DependencyError(f"no virtual camera device ({exc}). On Linux load v4l2loopback first: "
                              "sudo modprobe v4l2loopback devices=1 exclusive_caps=1; on Windows or macOS "
                              "install OBS and start its virtual camera once") from exc


class VirtualCameraSink:
    """Feeds ``device`` from ``ring`` until :meth:`close`; counts sent and repeated frames."""

    def __init__(self, ring: FrameRing, device: CameraDevice, placeholder: np.ndarray) -> None:
        self._ring = ring
        self._device = device
        self._last = np.ascontiguousarray(placeholder)
        self._last_seq = -1
        self._stop = threading.Event()
        self.sent = 0
        self.repeated = 0
        self._thread = threading.Thread(target=self._run, name="livepuppet-vcam", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            frame = self._ring.take(self._last_seq)
            if frame is None:
                self.repeated += 1
            else:
                with frame:
                    if frame.pixels.shape != self._last.shape:
                        self._last = np.empty_like(frame.pixels)
                    np.copyto(self._last, frame.pixels)
                    self._last_seq = frame.seq
            try:
                self._device.send(self._last)
            except (RuntimeError, ValueError) as exc:
                log.error("virtual camera: %s; stopping the sink", exc)
                return
            self.sent += 1
            self._device.sleep_until_next_frame()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._device.close()


class RecordingCamera:
    """A "camera" that records what it is sent to a video file at a steady rate (``livepuppet cam -o``)."""

    def __init__(self, path: str, width: int, height: int, fps: float, clock_ns: Callable[[], int]) -> None:
        self._writer = VideoWriter(path, width, height, fps)
        self._interval_ns = int(1e9 / fps)
        self._now = clock_ns
        self._next_ns = clock_ns()
        self.frames = 0

    def send(self, frame: np.ndarray) -> None:
        self._writer.write(frame)
        self.frames += 1

    def sleep_until_next_frame(self) -> None:
        self._next_ns += self._interval_ns
        delay = self._next_ns - self._now()
        if delay > 0:
            time.sleep(delay / 1e9)
        elif delay < -5 * self._interval_ns:  # far behind (machine stalled): restart the cadence
            self._next_ns = self._now()

    def close(self) -> None:
        self._writer.close()
