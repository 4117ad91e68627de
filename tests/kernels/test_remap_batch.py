"""Batched remap on the CPU: exactly the single-image remap per item, shared inputs broadcast."""

from __future__ import annotations

import numpy as np
import pytest
from livepuppet.kernels.mesh_warp import remap_bilinear
from livepuppet.kernels.remap import remap_batch


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_batched_equals_per_item(dtype: type) -> None:
    rng = np.random.default_rng(0)
    images = (rng.uniform(0, 255, (3, 40, 50, 3))).astype(dtype)
    mx = rng.uniform(-4, 54, (3, 30, 20)).astype(np.float32)  # includes outside samples: replicated border
    my = rng.uniform(-4, 44, (3, 30, 20)).astype(np.float32)
    out = remap_batch(images, mx, my)
    assert out.shape == (3, 30, 20, 3) and out.dtype == dtype
    for b in range(3):
        assert np.array_equal(out[b], remap_bilinear(images[b], mx[b], my[b]))
    shared_map = remap_batch(images, mx[1], my[1])
    assert shared_map.shape == (3, 30, 20, 3) and np.array_equal(shared_map[2], remap_bilinear(images[2], mx[1], my[1]))
    shared_image = remap_batch(images[0], mx, my)
    assert np.array_equal(shared_image[2], remap_bilinear(images[0], mx[2], my[2]))
    assert np.array_equal(remap_batch(images[0], mx[0], my[0]), remap_bilinear(images[0], mx[0], my[0]))


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match="batch sizes differ"):
        remap_batch(np.zeros((2, 4, 4, 3), np.uint8), np.zeros((3, 4, 4), np.float32), np.zeros((3, 4, 4), np.float32))
    with pytest.raises(ValueError, match="uint8 or float32"):
        remap_batch(np.zeros((4, 4, 3), np.float64), np.zeros((4, 4), np.float32), np.zeros((4, 4), np.float32))
