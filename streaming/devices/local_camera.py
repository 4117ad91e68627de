"""A local camera as the driver: a V4L2 device (``/dev/video0``) or a video file played in real time,
read on its own thread into an input :class:`FrameRing` (PyAV decodes both)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import av
from livepuppet.engine.clock import Clock
from livepuppet.errors import InputError
from livepuppet.streaming.frame_ring import FrameRing

log = logging.getLogger(__name__)


def open_camera(camera: str, width: int = 640, height: int = 480, fps: float = 30.0) -> av.container.InputContainer:
    """Open ``camera``: a device path or index (``0`` → ``/dev/video0``) or a video file."""
    device = f"/dev/video{camera}" if camera.isdigit() else camera
    try:
        if device.startswith("/dev/video"):
            return av.open(device, format="v4l2", options={"video_size": f"{width}x{height}",
                                                            "framerate": f"{fps:g}"})
        if not Path(device).is_file():
            raise InputError(f"camera {camera!r} is neither a camera device nor a video file")
        return av.open(device)
    except av.FFmpegError as exc:
        raise InputError(f"cannot open camera {camera!r}: {exc}") from exc


class CameraReader:
    """Decodes ``camera`` into ``ring`` until stopped or the file ends (then ``done`` is set). A file is
    paced to its own frame rate so it behaves like a live camera; ``loop`` replays it."""

    def __init__(self, camera: str, ring: FrameRing, clock: Clock, loop: bool = False) -> None:
        self._container = open_camera(camera)
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"camera {camera!r} has no video")
        self._is_file = not camera.isdigit() and not camera.startswith("/dev/video")
        self._ring = ring
        self._clock = clock
        self._loop = loop
        self._stop = threading.Event()
        self.done = threading.Event()
        self.frames = 0
        self.error = ""
        self._thread = threading.Thread(target=self._run, name="livepuppet-camera", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._read_once()
                if not (self._is_file and self._loop):
                    break
                self._container.seek(0)
        except (av.FFmpegError, OSError) as exc:
            self.error = f"camera stopped: {exc}"
            log.error(self.error)
        finally:
            self.done.set()

    def _read_once(self) -> None:
        stream = self._container.streams.video[0]
        start_ns = self._clock.now_ns()
        first_pts: float | None = None
        for frame in self._container.decode(stream):
            if self._stop.is_set():
                return
            if self._is_file and frame.pts is not None and frame.time_base is not None:
                t = float(frame.pts * frame.time_base)
                first_pts = t if first_pts is None else first_pts
                wait = start_ns + (t - first_pts) * 1e9 - self._clock.now_ns()
                if wait > 0 and self._stop.wait(wait / 1e9):
                    return
            now = self._clock.now_ns()
            self._ring.write(frame.to_ndarray(format="rgb24"), now, self.frames, (("received", now),))
            self.frames += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._container.close()
