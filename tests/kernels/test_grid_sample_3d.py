"""5-D trilinear grid sampling on the CPU against torch's grid_sample (fp32)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from livepuppet.kernels.grid_sample_3d import grid_sample_3d


def torch_reference(volume: np.ndarray, grid: np.ndarray) -> np.ndarray:
    return F.grid_sample(torch.from_numpy(volume), torch.from_numpy(grid), mode="bilinear", padding_mode="zeros",
                         align_corners=False).numpy()


@pytest.mark.parametrize("shape", [(1, 4, 5, 6, 7), (2, 3, 8, 4, 9), (1, 32, 4, 16, 16)])
def test_matches_torch_including_out_of_range(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(sum(shape))
    volume = rng.normal(size=shape).astype(np.float32)
    n = shape[0]
    grid = rng.uniform(-1.4, 1.4, (n, 3, 5, 6, 3)).astype(np.float32)  # about a third of samples partly outside
    grid[0, 0, 0, 0] = [5.0, -7.0, 0.0]  # far outside: zeros
    grid[0, 0, 0, 1] = [-1.0, 1.0, -1.0]  # on the outer edge of the corner voxels
    out = grid_sample_3d(volume, grid)
    assert out.shape == (n, shape[1], 3, 5, 6) and out.dtype == np.float32
    assert np.abs(out - torch_reference(volume, grid)).max() <= 1e-5
    assert np.all(out[0, :, 0, 0, 0] == 0.0)


def test_identity_grid_reproduces_the_volume() -> None:
    rng = np.random.default_rng(3)
    volume = rng.normal(size=(1, 2, 3, 4, 5)).astype(np.float32)
    axes = [(np.arange(s) + 0.5) / s * 2 - 1 for s in (3, 4, 5)]  # voxel centres, align_corners=False
    z, y, x = np.meshgrid(*axes, indexing="ij")
    grid = np.stack([x, y, z], -1)[None].astype(np.float32)
    assert np.abs(grid_sample_3d(volume, grid) - volume).max() < 1e-5


def test_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match="N, Do, Ho, Wo, 3"):
        grid_sample_3d(np.zeros((1, 2, 3, 4, 5), np.float32), np.zeros((1, 2, 3, 2), np.float32))
