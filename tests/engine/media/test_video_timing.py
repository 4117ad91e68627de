"""Driving videos by presentation time: VFR in → the right frame for each constant-rate instant, phone
rotation applied, still images refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from livepuppet.engine.media.timing import at_constant_rate
from livepuppet.engine.media.video_io import probe_video, read_video
from livepuppet.errors import InputError
from PIL import Image


def test_constant_rate_shows_the_frame_on_screen_at_each_instant() -> None:
    stamps_ms = [0, 40, 200, 210, 220, 500]  # a stall, a burst, a long last frame
    out = list(at_constant_rate(stamps_ms, lambda ms: ms * 1_000_000, fps=10))
    # instants 0, 0.1, 0.2 … s: 0.2 shows the frame stamped 0.2; the last frame lasts as long as its gap (0.28 s)
    assert [item for _, item in out] == [0, 40, 200, 220, 220, 500, 500, 500]
    assert [k for k, _ in out] == list(range(len(out)))


def test_average_rates_snap_to_the_common_rate_near_them() -> None:
    from livepuppet.engine.media.video_io import nice_rate

    assert nice_rate(11.998) == 12.0 and nice_rate(29.95) == pytest.approx(30000 / 1001)
    assert nice_rate(17.3) == 17.3


def test_vfr_driver_keeps_its_frame_times(tmp_path: Path, driver_video: Path, kit: Any) -> None:
    times = [0.0, 0.05, 0.1, 0.4, 0.45, 0.5, 1.0, *[1.0 + 0.1 * i for i in range(1, 18)]]
    path = tmp_path / "vfr.mp4"
    kit.remake_driver(driver_video, path, times_s=times)
    frames = list(read_video(path))
    assert [round(f.pts / 1e9, 3) for f in frames] == pytest.approx(times, abs=0.002)
    shown = [f.seq for _, f in at_constant_rate(frames, lambda f: f.pts, fps=10)]
    assert shown[:11] == [0, 2, 2, 2, 3, 5, 5, 5, 5, 5, 6]  # instant 0.1 s → frame 2, 0.4 s → 3, 0.5 s → 5


def test_display_rotation_is_applied(tmp_path: Path, driver_video: Path, kit: Any, measure_face: Any) -> None:
    path = tmp_path / "phone.mp4"
    upright = kit.remake_driver(driver_video, path, rotation=90)
    info = probe_video(path)
    assert info.rotation == 90 and (info.width, info.height) == (320, 320)
    frames = list(read_video(path))
    assert len(frames) == 24
    error = np.abs(frames[0].pixels.astype(int) - upright[0].astype(int)).mean()
    assert error < 6.0, "decoded upright, as a player shows it"
    features = measure_face(frames[3].pixels)
    assert features is not None


def test_a_still_image_is_not_a_driver(tmp_path: Path, portrait: np.ndarray) -> None:
    for name in ("photo.png", "photo.jpg", "photo.gif"):
        Image.fromarray(portrait).save(tmp_path / name)
        with pytest.raises(InputError, match="still image"):
            probe_video(tmp_path / name)


def test_an_animated_gif_drives(tmp_path: Path, portrait: np.ndarray) -> None:
    frames = [Image.fromarray(np.roll(portrait, 8 * i, axis=1)) for i in range(4)]
    frames[0].save(tmp_path / "moving.gif", save_all=True, append_images=frames[1:], duration=100)
    info = probe_video(tmp_path / "moving.gif")
    assert info.fps > 0 and len(list(read_video(tmp_path / "moving.gif"))) == 4
