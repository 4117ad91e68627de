from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.media.video_io import even_size, load_image, probe_video, read_video
from livepuppet.engine.pipeline import open_portrait
from livepuppet.errors import InputError, NoFaceError
from PIL import Image


def test_loads_a_real_photo(tmp_path: Path, portrait: np.ndarray) -> None:
    path = tmp_path / "p.jpg"
    Image.fromarray(portrait).save(path, quality=95)
    image = load_image(path)
    assert image.shape == portrait.shape and image.dtype == np.uint8


def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("hello, I am text")
    with pytest.raises(InputError, match="not a readable image"):
        load_image(path)


def test_truncated_image(tmp_path: Path, portrait: np.ndarray) -> None:
    path = tmp_path / "cut.jpg"
    Image.fromarray(portrait).save(path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(InputError):
        load_image(path)


def test_tiny_and_huge_images(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (20, 20)).save(tiny)
    with pytest.raises(InputError, match="too small"):
        load_image(tiny)
    huge = tmp_path / "huge.png"
    Image.new("L", (10000, 10000)).save(huge, compress_level=1)
    with pytest.raises(InputError, match="100 MP"):
        load_image(huge)


def test_no_face(config: EngineConfig) -> None:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)
    with pytest.raises(NoFaceError, match="no face"):
        open_portrait(noise, config)


def test_corrupt_video(tmp_path: Path, driver_video: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 255, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match="not a readable video"):
        probe_video(garbage)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(driver_video.read_bytes()[:3000])
    with pytest.raises(InputError):
        probe_video(truncated)
        list(read_video(truncated))


def test_reads_frames_with_timestamps(driver_video: Path) -> None:
    info = probe_video(driver_video)
    assert info.has_audio and info.fps == pytest.approx(12.0)
    frames = list(read_video(driver_video))
    assert len(frames) == 24
    assert [f.seq for f in frames] == list(range(24))
    assert frames[1].pts - frames[0].pts == pytest.approx(1e9 / 12, rel=0.01)


def test_even_size() -> None:
    assert even_size(513, 301, 1280) == (512, 300)
    assert even_size(4000, 3000, 1280) == (1280, 960)
