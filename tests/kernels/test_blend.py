from __future__ import annotations

import numpy as np
from livepuppet.kernels.blend import feather_blend, feather_mask


def test_feather_mask_shape_and_ramp() -> None:
    m = feather_mask(100, 0.1)
    assert m.shape == (100, 100) and m.dtype == np.float32
    assert m[50, 50] == 1.0 and m[0, 50] < 0.05 and m[50, 0] < 0.05
    assert np.all(np.diff(m[50, :50]) >= 0), "rises monotonically from the edge"
    assert np.allclose(m, m.T) and np.allclose(m, m[::-1, ::-1])


def test_feather_blend_endpoints() -> None:
    a = np.full((10, 10, 3), 200, np.uint8)
    b = np.full((10, 10, 3), 100, np.uint8)
    assert np.array_equal(feather_blend(a, b, np.zeros((10, 10), np.float32)), a)
    assert np.array_equal(feather_blend(a, b, np.ones((10, 10), np.float32)), b)
    half = feather_blend(a, b, np.full((10, 10), 0.5, np.float32))
    assert np.all(np.abs(half.astype(int) - 150) <= 1)
