"""Odd portrait formats load as the picture they show (16-bit, gray, palette, alpha, CMYK)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.media.image_io import load_image
from livepuppet.engine.pipeline import open_portrait
from PIL import Image


def gray_of(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float64)


def save_16bit_gray(path: Path, rgb: np.ndarray) -> None:
    Image.fromarray((gray_of(rgb) * 257).astype(np.uint16)).save(path)


def save_16bit_rgb(path: Path, rgb: np.ndarray) -> None:
    cv2.imwrite(str(path), (rgb.astype(np.uint16) * 257)[:, :, ::-1])


def save_alpha(path: Path, rgb: np.ndarray) -> None:
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:40, :40, 3] = 0  # a transparent corner becomes white
    Image.fromarray(rgba).save(path)


MAKERS: dict[str, Callable[[Path, np.ndarray], None]] = {
    "gray16.png": save_16bit_gray,
    "rgb16.png": save_16bit_rgb,
    "gray8.png": lambda p, a: Image.fromarray(a).convert("L").save(p),
    "gray-alpha.png": lambda p, a: Image.fromarray(a).convert("LA").save(p),
    "palette.png": lambda p, a: Image.fromarray(a).quantize(256).save(p),
    "alpha.png": save_alpha,
    "cmyk.jpg": lambda p, a: Image.fromarray(a).convert("CMYK").save(p, quality=95),
    "gray32.tif": lambda p, a: Image.fromarray((gray_of(a) * 257).astype(np.int32), mode="I").save(p),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_odd_formats_load_as_the_picture(tmp_path: Path, name: str, portrait: np.ndarray) -> None:
    path = tmp_path / name
    MAKERS[name](path, portrait)
    image = load_image(path)
    assert image.shape == portrait.shape and image.dtype == np.uint8
    inner = (slice(60, None), slice(60, None))  # outside the transparent corner
    colorless = "gray" in name
    reference = gray_of(portrait) if colorless else portrait.astype(np.float64)
    got = image[..., 0].astype(np.float64) if colorless else image.astype(np.float64)
    tolerance = 12.0 if name == "palette.png" else 4.0
    assert np.abs(got[inner] - reference[inner]).mean() < tolerance
    if name == "alpha.png":
        assert (image[:40, :40] == 255).all()


def test_a_16bit_gray_portrait_has_its_face_found(tmp_path: Path, portrait: np.ndarray, config: EngineConfig) -> None:
    path = tmp_path / "scan.png"
    save_16bit_gray(path, portrait)
    source = open_portrait(load_image(path), config)
    assert source.pose.scale > 50
