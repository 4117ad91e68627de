"""The full-resolution paste-back: outside the face, what moved is the photo warped once at its own
resolution; the face keeps the rendered crop."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.pipeline import open_portrait
from livepuppet.engine.render.compositor import Compositor
from livepuppet.engine.render.full_resolution import CropWarp, FullResolutionWarp, worth_it
from livepuppet.engine.source import PreparedSource

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from conftest import real_portrait  # noqa: E402


@pytest.fixture(scope="module")
def hopper(config: EngineConfig) -> PreparedSource:
    """Head and shoulders, crop box 385 px for a 512 px crop: pasting back downsamples what moved."""
    return open_portrait(real_portrait("hopper-head-and-shoulders"), config)


def _shift_map(size: int, shift_crop: np.ndarray) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return np.ascontiguousarray(np.stack([xs + shift_crop[0], ys + shift_crop[1]], axis=-1), dtype=np.float32)


@pytest.mark.parametrize("shift", [(3, -2), (-5, 4)])
def test_what_moves_by_whole_photo_pixels_outside_the_face_is_the_photo_itself(hopper: PreparedSource,
                                                                               shift: tuple[int, int]) -> None:
    """A backward map that shifts everything by whole *photo* pixels (fractional crop pixels): outside the
    face's zone and its blend band the result is the photo's own pixels, shifted, bit for bit (a crop round
    trip would have resampled them twice); inside the zone nothing is written (the crop stays)."""
    box = hopper.box
    roi = (slice(box.y0, box.y0 + box.side), slice(box.x0, box.x0 + box.side))
    warp = FullResolutionWarp(hopper, roi)
    k = box.side / hopper.crop_size
    d = np.array(shift, np.float64)
    crop_warp = CropWarp(map_xy=_shift_map(hopper.crop_size, d / k), face=hopper.landmarks[:, :2])
    up = np.zeros((box.side, box.side, 3), np.uint8)
    warp.apply(up, crop_warp)
    photo = hopper.image[roi]
    expected = np.zeros_like(photo)
    dx, dy = shift
    src = photo[max(dy, 0): box.side + min(dy, 0), max(dx, 0): box.side + min(dx, 0)]
    expected[max(-dy, 0): max(-dy, 0) + src.shape[0], max(-dx, 0): max(-dx, 0) + src.shape[1]] = src
    # Where to compare: away from the box edges (the map's resize clamps there, the shift pulls in the
    # photo's border) and beyond the face zone's blend band.
    x0, y0, x1, y1 = warp.face_zone(crop_warp.face)
    band = int(np.ceil(0.06 * hopper.pose.scale * k)) + 1
    margin = 2 + max(abs(dx), abs(dy))
    check = np.zeros((box.side, box.side), bool)
    check[margin:-margin, margin:-margin] = True
    check[max(y0 - band, 0): y1 + band, max(x0 - band, 0): x1 + band] = False
    assert check.sum() > 0.4 * box.side ** 2
    assert np.array_equal(up[check], expected[check])
    assert not up[y0:y1, x0:x1].any(), "the face's zone keeps the rendered crop"


def test_nothing_moved_changes_nothing(hopper: PreparedSource) -> None:
    box = hopper.box
    roi = (slice(box.y0, box.y0 + box.side), slice(box.x0, box.x0 + box.side))
    warp = FullResolutionWarp(hopper, roi)
    still = CropWarp(map_xy=_shift_map(hopper.crop_size, np.zeros(2)), face=hopper.landmarks[:, :2])
    assert warp.moved_rect(still.map_xy) is None
    up = np.full((box.side, box.side, 3), 7, np.uint8)
    warp.apply(up, still)
    assert (up == 7).all()


def test_a_crop_that_oversamples_its_box_is_pasted_back_as_before(prepared: PreparedSource, config: EngineConfig,
                                                                  hopper: PreparedSource) -> None:
    """The waist-up astronaut's crop samples its 194 px box 2.6× finer than the photo: its round trip keeps
    the detail, so the pass is off there (bicubic would add overshoot); Hopper's 385 px box needs it."""
    assert not worth_it(prepared)
    assert worth_it(hopper)
    shifted = _shift_map(prepared.crop_size, np.array([2.5, 1.5]))
    compositor = Compositor(prepared, config.composite)
    crop = prepared.crop.copy()
    with_map = compositor.composite(crop, CropWarp(map_xy=shifted, face=prepared.landmarks[:, :2]))
    assert np.array_equal(with_map, compositor.composite(crop))
