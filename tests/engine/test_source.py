"""Preparing a portrait: the crop box lies inside the photo, however the face is framed."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.pipeline import open_portrait
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import PORTRAIT_CASES, real_portrait  # noqa: E402


def _framings() -> dict[str, np.ndarray]:
    astronaut = data.astronaut()
    framings = {name: real_portrait(name) for name in PORTRAIT_CASES}
    framings["face at the top-left corner"] = np.ascontiguousarray(astronaut[70:, 150:])
    framings["face at the right edge"] = np.ascontiguousarray(astronaut[:, :300])
    return framings


@pytest.mark.parametrize("name", list(_framings()))
def test_the_crop_shows_only_the_photo(name: str, config: EngineConfig) -> None:
    """No replicated edge pixels in the crop (streaks in every streamed frame): the box is moved, and shrunk
    if the photo is smaller, to lie inside it, and the face stays in the crop."""
    image = _framings()[name]
    source = open_portrait(image, config)
    box, (h, w) = source.box, image.shape[:2]
    assert 0 <= box.x0 and 0 <= box.y0 and box.x0 + box.side <= w and box.y0 + box.side <= h, (box, (h, w))
    expected = cv2.resize(image[box.y0: box.y0 + box.side, box.x0: box.x0 + box.side],
                          (source.crop_size, source.crop_size),
                          interpolation=cv2.INTER_AREA if box.side > source.crop_size else cv2.INTER_CUBIC)
    assert np.array_equal(source.crop, expected)
    face = source.landmarks[:, :2]
    assert (face >= 0).all() and (face < source.crop_size).all()
    wanted = round(config.render.crop_scale * source.pose.scale * box.side / source.crop_size)
    assert box.side == min(wanted, h, w) or abs(box.side - min(wanted, h, w)) <= 0.05 * box.side
