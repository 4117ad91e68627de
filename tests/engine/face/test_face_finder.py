"""Small faces in large photos are found (tiled detection, then the mesh), the largest by default or the
N-th from the left."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.pipeline import open_portrait
from livepuppet.errors import NoFaceError


def canvas(height: int, width: int, pastes: list[tuple[int, int, int]], portrait: np.ndarray) -> np.ndarray:
    """A plain wall (a soft gradient) with the portrait pasted at (y, x) with side s, for each paste."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    wall = np.stack([90 + 60 * xx / width, 110 + 40 * yy / height, np.full_like(xx, 140.0)], axis=-1)
    out = wall.astype(np.uint8)
    for y, x, side in pastes:
        out[y:y + side, x:x + side] = cv2.resize(portrait, (side, side), interpolation=cv2.INTER_AREA)
    return out


def face_center(source) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    return source.box.x0 + source.box.side / 2, source.box.y0 + source.box.side / 2


def test_a_small_face_in_a_4000x3000_photo(portrait: np.ndarray, config: EngineConfig) -> None:
    # the astronaut's face is ~75 px wide here: 12 px after the tracker's downscale to 640
    photo = canvas(3000, 4000, [(300, 2900, 400)], portrait)
    source = open_portrait(photo, config)
    x, y = face_center(source)
    assert 2900 < x < 3300 and 300 < y < 700


def test_a_panorama_gives_the_largest_face_or_the_one_asked_for(portrait: np.ndarray, config: EngineConfig) -> None:
    photo = canvas(800, 4000, [(200, 600, 300), (100, 3000, 500)], portrait)
    x, _ = face_center(open_portrait(photo, config))
    assert 3000 < x < 3500, "the largest face wins"
    x0, _ = face_center(open_portrait(photo, config, face=0))
    x1, _ = face_center(open_portrait(photo, config, face=1))
    assert 600 < x0 < 900 and 3000 < x1 < 3500, "faces are numbered from the left"
    with pytest.raises(NoFaceError, match="numbered 0 to 1"):
        open_portrait(photo, config, face=2)
