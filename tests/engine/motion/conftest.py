"""Driver media for the motion tests: still photos re-encoded as camera-like video, and a second real face."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import av
import cv2
import matplotlib
import numpy as np
import pytest


def camera_like_video(path: Path, images: Sequence[np.ndarray], fps: int = 25, noise: float = 4.0,
                      crf: int = 23, seed: int = 0) -> Path:
    """Each image of ``images`` (one per frame, ``(H, W, 3) u8 RGB``, same size) with camera-like sensor
    noise (Gaussian, ``noise`` levels), a 1 % exposure flicker, and H.264 compression at ``crf``."""
    rng = np.random.default_rng(seed)
    h, w = images[0].shape[:2]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf)}
        for image in images:
            gain = 1.0 + 0.01 * rng.standard_normal()
            noisy = np.clip(image.astype(np.float32) * gain + rng.normal(0.0, noise, image.shape), 0, 255)
            for packet in stream.encode(av.VideoFrame.from_ndarray(noisy.astype(np.uint8), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


CameraLikeVideo = Callable[..., Path]


@pytest.fixture(name="camera_like_video", scope="session")
def camera_like_video_fixture() -> CameraLikeVideo:
    return camera_like_video


@pytest.fixture(scope="session")
def grace_hopper() -> np.ndarray:
    """A second real portrait (Grace Hopper, public domain) shipped with matplotlib, as 512×512 RGB."""
    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)  # 600×512
    return np.ascontiguousarray(image[30:542])
