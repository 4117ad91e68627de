"""The compiled CPU warp (Numba) against the CUDA kernels' own source run on the CPU, and in the renderer.

The compiled warp implements the GPU algorithm (cofactor affines, painter's-order rasterization with the
shared-edge rule, exact full-resolution map), so it must agree with the emulated CUDA kernels bit for bit,
on random folding meshes and on the real portrait's frames, blinks included.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.motion.retarget import Retargeter
from livepuppet.engine.motion.scripted_motion import scripted_motion
from livepuppet.engine.render.mesh_renderer import MeshRenderer
from livepuppet.engine.source import PreparedSource
from livepuppet.errors import ConfigError, DependencyError
from livepuppet.kernels import cuda_emulation, jit, jit_warp
from livepuppet.kernels.cuda_backend import CudaBackend
from livepuppet.kernels.jit_warp import JitMeshWarp
from scipy.spatial import Delaunay

pytestmark = pytest.mark.skipif(not jit_warp.available(), reason="numba is not installed")


@pytest.fixture(scope="module")
def emulated() -> CudaBackend:
    if not cuda_emulation.compiler_available():
        pytest.skip("g++ is not installed: cannot emulate the CUDA kernels")
    return CudaBackend(np, cuda_emulation.EmulatedModule(), poison=0)


def folding_mesh(seed: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A Delaunay mesh over a ``size``² crop, a jittered target that folds in places, and a shuffled order
    that leaves some triangles out."""
    rng = np.random.default_rng(seed)
    corners = np.array([[-1, -1], [size, -1], [-1, size], [size, size]], np.float32)
    src = np.concatenate([corners, rng.uniform(0, size - 1, (80, 2)).astype(np.float32)])
    dst = src + np.concatenate([np.zeros((4, 2)), rng.normal(0, size / 20, (80, 2))]).astype(np.float32)
    dst[7] = dst[8]  # a collapsed triangle or two (closed lids do this)
    tris = Delaunay(src).simplices.astype(np.int32)
    order = rng.permutation(len(tris))[: len(tris) - 5].astype(np.int32)
    return src, dst, tris, order


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_map_and_warp_equal_the_gpu_kernels_on_folding_meshes(emulated: CudaBackend, seed: int) -> None:
    size = 96
    src, dst, tris, order = folding_mesh(seed, size)
    image = np.random.default_rng(seed + 10).integers(0, 256, (size, size, 3), dtype=np.uint8)
    warp = JitMeshWarp(image, src, tris)
    assert np.array_equal(warp.affines(dst), emulated.to_host(emulated.triangle_affines(src, dst, tris)))
    want_x, want_y = (emulated.to_host(m) for m in emulated.mesh_backward_map(src, dst, tris, (size, size), order))
    got_x, got_y = warp.backward_map(dst, order)
    assert np.array_equal(got_x, want_x) and np.array_equal(got_y, want_y)
    assert np.array_equal(warp.warp(dst, order), emulated.to_host(emulated.mesh_warp(image, src, dst, tris, order)))


@pytest.mark.parametrize("seed", [3, 4])
def test_pixels_exactly_on_edges_are_decided_as_the_gpu_decides(emulated: CudaBackend, seed: int) -> None:
    """Vertices on the integer and half-integer grid put many pixels exactly on edges, horizontal edges on
    rows and vertices on pixels: where rounding could decide, the compiled raster must take its exact test."""
    size = 64
    rng = np.random.default_rng(seed)
    corners = np.array([[-1, -1], [size, -1], [-1, size], [size, size]], np.float32)
    grid = np.stack(np.meshgrid(np.arange(4, size - 4, 8), np.arange(4, size - 4, 8)), axis=-1).reshape(-1, 2)
    src = np.concatenate([corners, grid.astype(np.float32)])
    dst = src.copy()
    dst[4:] += rng.integers(-6, 7, (len(grid), 2)) / 2.0  # half-pixel steps: folds, and edges along rows
    tris = Delaunay(src).simplices.astype(np.int32)
    order = rng.permutation(len(tris)).astype(np.int32)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    warp = JitMeshWarp(image, src, tris)
    want_x, want_y = (emulated.to_host(m) for m in emulated.mesh_backward_map(src, dst, tris, (size, size), order))
    got_x, got_y = warp.backward_map(dst, order)
    assert np.array_equal(got_x, want_x) and np.array_equal(got_y, want_y)
    assert np.array_equal(warp.warp(dst, order), emulated.to_host(emulated.mesh_warp(image, src, dst, tris, order)))


def test_real_portrait_frames_equal_the_gpu_kernels(emulated: CudaBackend, prepared: PreparedSource) -> None:
    config = EngineConfig()
    renderer = MeshRenderer(prepared, replace(config.render, cpu_warp="opencv"))
    retargeter = Retargeter(prepared, config.retarget)
    warp = JitMeshWarp(prepared.crop, prepared.mesh.points, prepared.mesh.triangles)
    for i in (0, 10, 37):  # frame 10 blinks: the lids collapse
        target = retargeter.retarget(scripted_motion(i / 25.0, i))
        dst = renderer.target_points(target).copy()
        order = renderer.draw_order(target, dst)
        want = emulated.to_host(emulated.mesh_warp(prepared.crop, prepared.mesh.points, dst,
                                                   prepared.mesh.triangles, order))
        assert np.array_equal(warp.warp(dst, order), want), f"frame {i}"


def test_renderer_uses_the_compiled_warp_by_default_and_stays_close_to_opencv(prepared: PreparedSource) -> None:
    config = EngineConfig()
    jit = MeshRenderer(prepared, config.render)
    cv = MeshRenderer(prepared, replace(config.render, cpu_warp="opencv"))
    assert jit.warp_path == "jit" and cv.warp_path == "opencv"
    retargeter = Retargeter(prepared, config.retarget)
    for i in (5, 30):
        target = retargeter.retarget(scripted_motion(i / 25.0, i))
        steps: list[tuple[str, int]] = []
        out = jit.render(target, steps)
        assert [name for name, _ in steps] == ["target_points", "draw_order", "backward_map", "refine_map", "remap",
                                               "mouth_interior"]
        diff = np.abs(out.astype(int) - cv.render(target))
        # The OpenCV path approximates the same exact map (coarse grid, fillConvexPoly's edge rule).
        assert diff.mean() < 0.6 and np.percentile(diff.max(axis=2), 99) <= 12


def test_unknown_cpu_warp_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cpu_warp"):
        replace(EngineConfig().render, cpu_warp="fast")


def test_without_numba_auto_falls_back_and_jit_names_the_fix(monkeypatch: pytest.MonkeyPatch,
                                                              prepared: PreparedSource) -> None:
    monkeypatch.setattr(jit, "numba", None)
    assert not jit_warp.use_jit_warp("auto") and not jit_warp.use_jit_warp("opencv")
    assert MeshRenderer(prepared, EngineConfig().render).warp_path == "opencv"
    with pytest.raises(DependencyError, match="pip install numba"):
        MeshRenderer(prepared, replace(EngineConfig().render, cpu_warp="jit"))
