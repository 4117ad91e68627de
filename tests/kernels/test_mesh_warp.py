"""The CPU mesh-warp kernels on synthetic meshes with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from livepuppet.kernels.mesh_warp import (
    backward_map,
    rasterize_ids,
    refine_map,
    remap_bilinear,
    triangle_affines,
)
from scipy.spatial import Delaunay

SIZE = 128


def grid_mesh(n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    lin = np.linspace(-1.0, SIZE, n)
    pts = np.stack(np.meshgrid(lin, lin), -1).reshape(-1, 2).astype(np.float32)
    return pts, Delaunay(pts).simplices.astype(np.int32)


def test_identity_mesh_gives_identity_map() -> None:
    pts, tris = grid_mesh()
    mx, my = backward_map(pts, pts, tris, (SIZE, SIZE), map_scale=0.5)
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    # cv2.remap upsamples with 1/32-pixel fixed-point weights: ≤ 1/32 of a coarse cell.
    assert np.abs(mx - xs).max() < 0.07 and np.abs(my - ys).max() < 0.07


@pytest.mark.parametrize("map_scale", [1.0, 0.5, 0.25])
def test_global_affine_is_reproduced_exactly(map_scale: float) -> None:
    pts, tris = grid_mesh()
    a = np.array([[1.05, 0.05, -4.0], [-0.03, 1.05, -2.0]])  # the moved mesh still covers the grid
    dst = (pts @ a[:, :2].T + a[:, 2]).astype(np.float32)
    mx, my = backward_map(pts, dst, tris, (SIZE, SIZE), map_scale=map_scale)
    inv = np.linalg.inv(np.vstack([a, [0, 0, 1]]))
    ys, xs = np.mgrid[8:SIZE - 8, 8:SIZE - 8]
    ex = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    ey = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    tolerance = 1.0 / (32 * map_scale)  # fixed-point upsampling weights on both axes (exact at scale 1)
    assert np.abs(mx[8:-8, 8:-8] - ex).max() < tolerance
    assert np.abs(my[8:-8, 8:-8] - ey).max() < tolerance


def test_triangle_affines_map_vertices_back() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (30, 2)).astype(np.float32)
    dst = src + rng.normal(0, 3, (30, 2)).astype(np.float32)
    tris = Delaunay(src).simplices.astype(np.int32)
    aff = triangle_affines(src, dst, tris)
    for t, (i, j, k) in enumerate(tris):
        for v in (i, j, k):
            x, y = dst[v]
            back = (aff[t, 0] * x + aff[t, 1] * y + aff[t, 2], aff[t, 3] * x + aff[t, 4] * y + aff[t, 5])
            assert np.allclose(back, src[v], atol=1e-3)


def test_every_pixel_is_covered_and_order_decides_overlaps() -> None:
    pts, tris = grid_mesh()
    ids = rasterize_ids(pts, tris, (SIZE, SIZE), 1.0)
    assert (ids >= 0).all()
    # Two overlapping triangles: the one drawn last wins.
    two = np.array([[10, 10], [100, 10], [10, 100], [100, 100]], np.float32)
    t2 = np.array([[0, 1, 2], [1, 3, 2], [0, 1, 3]], np.int32)
    first = rasterize_ids(two, t2, (SIZE, SIZE), 1.0, order=np.array([0, 2]))
    second = rasterize_ids(two, t2, (SIZE, SIZE), 1.0, order=np.array([2, 0]))
    assert first[20, 60] == 2 and second[20, 60] == 0


def test_remap_identity_and_shift() -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    ys, xs = np.mgrid[0:64, 0:64].astype(np.float32)
    assert np.array_equal(remap_bilinear(img, xs, ys), img)
    shifted = remap_bilinear(img, xs + 1.0, ys)
    assert np.array_equal(shifted[:, :-1], img[:, 1:])


def test_refine_map_is_exact_where_coarse_map_blurs() -> None:
    pts, tris = grid_mesh(9)
    dst = pts.copy()
    mid = np.isclose(pts[:, 1], pts[4 * 9, 1]) & (pts[:, 0] > 20) & (pts[:, 0] < 100)
    dst[mid, 1] -= 12.0  # a fold-free, sharp local squeeze
    order = np.arange(len(tris))
    exact_x, exact_y = backward_map(pts, dst, tris, (SIZE, SIZE), map_scale=1.0, order=order)
    mx, my = backward_map(pts, dst, tris, (SIZE, SIZE), map_scale=0.25, order=order)
    assert np.abs(my - exact_y).max() > 0.5
    refine_map(mx, my, dst, tris, triangle_affines(pts, dst, tris), order, [(0, 0, SIZE, SIZE)])
    assert np.abs(my - exact_y).max() < 1e-3 and np.abs(mx - exact_x).max() < 1e-3
