"""The GPU kernels against their CPU twins and torch's ops, on fresh random inputs and the real portrait.

Each test runs twice: ``emulated`` compiles the very CUDA source as C++ (g++) and launches it serially
through the same :class:`CudaBackend` code (every machine), ``cuda`` runs it on the GPU with CuPy
(``gpu`` mark; skipped cleanly without CuPy or a CUDA device). Outputs are poisoned before every kernel
(NaN for floats; bytes compared between runs poisoned with 0 and with 255), so unwritten elements fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.motion.retarget import Retargeter
from livepuppet.engine.motion.scripted_motion import scripted_motion
from livepuppet.engine.render.mesh_renderer import MeshRenderer
from livepuppet.engine.source import PreparedSource
from livepuppet.kernels import color_convert, cuda_emulation
from livepuppet.kernels.blend import feather_blend, feather_mask
from livepuppet.kernels.cuda_backend import CudaBackend
from livepuppet.kernels.cuda_source import CUDA_SOURCE
from livepuppet.kernels.device_mesh_warp import DeviceMeshWarp, to_torch
from livepuppet.kernels.grid_sample_3d import grid_sample_3d
from livepuppet.kernels.mesh_raster import mesh_backward_map, mesh_warp
from livepuppet.kernels.mesh_warp import signed_areas, triangle_affines
from livepuppet.kernels.remap import remap_batch
from scipy.spatial import Delaunay
from skimage import data

# Stated tolerances (docs/kernels.md): exact arithmetic twins must agree bit for bit; the rasterizer's
# edge rule differs from OpenCV's fillConvexPoly (exact inclusive edges vs 1/16-pixel rounded spans),
# which changes only pixels on triangle edges, and matters only where the map is discontinuous.
MAP_WITHIN_0_1_PX = 0.95  # share of pixels whose map is within 0.1 px of the CPU twin's (fold-free mesh)
MAP_WITHIN_0_3_PX = 0.995  # ... within 0.3 px (never more than 1 px there)
WARP_MEAN_ABS = 0.1  # mean |GPU - CPU| over all pixels and channels of a warped crop (u8 levels)
WARP_FRACTION_OVER_8 = 0.002  # share of pixels differing by more than 8 levels
GRID_SAMPLE_F32_ATOL = 1e-5
BLEND_MATCHED_FRACTION_OFF_BY_1 = 0.01  # colour-matched blend: share of values off by one level


@dataclass(frozen=True)
class Gpu:
    """Two backends on the same kernels, poisoning byte outputs with 0 and with 255."""

    low: CudaBackend
    high: CudaBackend
    kind: str

    def run(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Host result of ``method`` after checking that every element was written."""
        a = _host(getattr(self.low, method)(*args, **kwargs), self.low)
        b = _host(getattr(self.high, method)(*args, **kwargs), self.high)
        for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,), strict=True):
            if x.dtype.kind == "f":
                assert not np.isnan(x).any() and not np.isnan(y).any(), f"{method}: unwritten (NaN) elements"
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f"{method}: output depends on the poison"
        return a


def _host(value: Any, backend: CudaBackend) -> Any:
    return tuple(backend.to_host(v) for v in value) if isinstance(value, tuple) else backend.to_host(value)


def _cuda_module() -> tuple[Any, Any]:
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"no usable CUDA device ({exc})")
    if count == 0:
        pytest.skip("no CUDA device")
    return cupy, cupy.RawModule(code=CUDA_SOURCE)


@pytest.fixture(scope="module", params=["emulated", pytest.param("cuda", marks=pytest.mark.gpu)])
def gpu(request: pytest.FixtureRequest) -> Iterator[Gpu]:
    if request.param == "emulated":
        if not cuda_emulation.compiler_available():
            pytest.skip("g++ is not installed: cannot emulate the CUDA kernels")
        xp, module = np, cuda_emulation.EmulatedModule()
    else:
        xp, module = _cuda_module()
    yield Gpu(CudaBackend(xp, module, poison=0), CudaBackend(xp, module, poison=255), request.param)


def random_mesh(rng: np.random.Generator, size: int, n: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A Delaunay mesh over the square plus its corners, and a jittered (sometimes folding) target."""
    corners = np.array([[-1, -1], [size, -1], [-1, size], [size, size]], np.float32)
    src = np.concatenate([corners, rng.uniform(0, size - 1, (n, 2)).astype(np.float32)])
    dst = src + np.concatenate([np.zeros((4, 2)), rng.normal(0, size / 25, (n, 2))]).astype(np.float32)
    return src, dst, Delaunay(src).simplices.astype(np.int32)


# ----------------------------------------------------------------------------------------- remap


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_remap_matches_opencv_twin_exactly(gpu: Gpu, dtype: type) -> None:
    rng = np.random.default_rng(11)
    images = rng.uniform(0, 255, (3, 37, 53, 3)).astype(dtype)
    mx = rng.uniform(-6, 59, (3, 29, 31)).astype(np.float32)  # outside samples replicate the border
    my = rng.uniform(-6, 43, (3, 29, 31)).astype(np.float32)
    mx[0, 0, :4] = [0.5 / 32, 1.5 / 32, 52.0, 1e6]  # ties rounding to even, the last column, far outside
    want = remap_batch(images, mx, my)
    got = gpu.run("remap_batch", images, mx, my)
    if dtype == np.uint8:
        assert np.array_equal(got, want)
    else:
        assert np.abs(got - want).max() <= 1e-5 * 255
    assert np.array_equal(gpu.run("remap_batch", images[1], mx[2], my[2]), remap_batch(images[1], mx[2], my[2]))


def test_remap_real_portrait_vs_torch_grid_sample(gpu: Gpu) -> None:
    """torch's 2-D grid_sample (border padding, exact positions) differs only by OpenCV's 1/32-px grid."""
    image = cv2.GaussianBlur(data.astronaut(), (0, 0), 1.0)
    h, w = image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    mx = xs + 6.0 * np.sin(ys / 23.0) + 0.37
    my = ys + 4.0 * np.cos(xs / 31.0) - 0.21
    got = gpu.run("remap_batch", image, mx, my).astype(np.float32)
    grid = torch.from_numpy(np.stack([mx / (w - 1) * 2 - 1, my / (h - 1) * 2 - 1], -1)[None])
    ref = F.grid_sample(torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None], grid, mode="bilinear",
                        padding_mode="border", align_corners=True)[0].permute(1, 2, 0).numpy()
    d = np.abs(got - ref)
    assert d.max() <= 4.0 and d.mean() < 0.5


# ------------------------------------------------------------------------------------------ mesh


def test_triangle_affines_match(gpu: Gpu) -> None:
    rng = np.random.default_rng(2)
    src, dst, tris = random_mesh(rng, 96)
    dst[tris[0, 1]] = dst[tris[0, 0]]  # a collapsed triangle: both sides fall back to a translation
    dst[tris[0, 2]] = dst[tris[0, 0]]
    want = triangle_affines(src, dst, tris)
    got = gpu.run("triangle_affines", src, dst, tris)
    assert np.allclose(got, want, rtol=1e-4, atol=1e-3)


def test_painter_order_decides_overlaps(gpu: Gpu) -> None:
    pts = np.array([[10, 10], [100, 10], [10, 100], [100, 100]], np.float32)
    src = pts + np.array([[0, 0], [0, 0], [0, 0], [30, 0]], np.float32)  # triangle 2 maps differently
    tris = np.array([[0, 1, 2], [1, 3, 2], [0, 1, 3]], np.int32)
    for order, winner in ((np.array([0, 2]), 2), (np.array([2, 0]), 0)):
        mx, my = gpu.run("mesh_backward_map", src, pts, tris, (128, 128), order)
        aff = triangle_affines(src, pts, tris)[winner]
        assert mx[20, 60] == pytest.approx(aff[0] * 60 + aff[1] * 20 + aff[2], abs=1e-3)
        assert mx[120, 120] == 120.0 and my[120, 120] == 120.0, "undrawn pixels map to themselves"


def exact_painter_map(src: np.ndarray, dst: np.ndarray, tris: np.ndarray, size: int,
                      order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference in NumPy: pixels inside a triangle (edges inclusive) take its affine, later triangles win."""
    aff = triangle_affines(src, dst, tris)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    ids = np.full((size, size), -1)
    for t in order:
        p = dst[tris[t]].astype(np.float64)
        area = (p[1, 0] - p[0, 0]) * (p[2, 1] - p[0, 1]) - (p[2, 0] - p[0, 0]) * (p[1, 1] - p[0, 1])
        if area == 0:
            continue
        inside = np.ones((size, size), bool)
        for a, b in ((1, 2), (2, 0), (0, 1)):
            e = (p[b, 0] - p[a, 0]) * (ys - p[a, 1]) - (p[b, 1] - p[a, 1]) * (xs - p[a, 0])
            inside &= e * np.sign(area) >= -1e-9
        ids[inside] = t
    a = aff[np.maximum(ids, 0)]
    fx, fy = xs.astype(np.float32), ys.astype(np.float32)
    mx = np.where(ids >= 0, a[..., 0] * fx + a[..., 1] * fy + a[..., 2], fx)
    my = np.where(ids >= 0, a[..., 3] * fx + a[..., 4] * fy + a[..., 5], fy)
    return mx, my


def test_backward_map_is_the_exact_painter_map(gpu: Gpu) -> None:
    """Folding meshes in random draw orders: the later triangle wins wherever triangles overlap."""
    rng = np.random.default_rng(4)
    for _ in range(3):
        src, dst, tris = random_mesh(rng, 80)
        order = rng.permutation(len(tris)).astype(np.int32)
        want = exact_painter_map(src, dst, tris, 80, order)
        got = gpu.run("mesh_backward_map", src, dst, tris, (80, 80), order)
        err = np.hypot(got[0] - want[0], got[1] - want[1])
        assert (err < 1e-3).mean() >= 0.999  # only pixels exactly on an edge may tie-break differently


def test_backward_map_vs_opencv_rasterized_twin(gpu: Gpu) -> None:
    """OpenCV's fillConvexPoly also covers up to about half a pixel outside each triangle; on a mesh that
    does not fold that only changes edge pixels slightly."""
    rng = np.random.default_rng(5)
    corners = np.array([[-1, -1], [80, -1], [-1, 80], [80, 80]], np.float32)
    src = np.concatenate([corners, rng.uniform(0, 79, (60, 2)).astype(np.float32)])
    tris = Delaunay(src).simplices.astype(np.int32)
    dst = src * np.float32(0.97) + np.float32(1.5)  # smooth and fold-free
    dst[4:] += rng.normal(0, 0.3, (60, 2)).astype(np.float32)
    assert np.all(np.sign(signed_areas(src, tris)) == np.sign(signed_areas(dst, tris))), "test mesh must not fold"
    order = np.arange(len(tris), dtype=np.int32)
    want = mesh_backward_map(src, dst, tris, (80, 80), order, map_scale=1.0)
    got = gpu.run("mesh_backward_map", src, dst, tris, (80, 80), order)
    err = np.hypot(got[0] - want[0], got[1] - want[1])
    assert np.median(err) < 1e-4 and err.max() < 1.0
    assert (err < 0.1).mean() >= MAP_WITHIN_0_1_PX and (err < 0.3).mean() >= MAP_WITHIN_0_3_PX


def _targets(prepared: PreparedSource, frames: tuple[int, ...]) -> tuple[MeshRenderer, list[Any]]:
    config = EngineConfig()
    renderer = MeshRenderer(prepared, config.render)
    retargeter = Retargeter(prepared, config.retarget)
    return renderer, [retargeter.retarget(scripted_motion(i / 25.0, i)) for i in frames]


def test_mesh_warp_real_portrait_and_batch(gpu: Gpu, prepared: PreparedSource) -> None:
    renderer, targets = _targets(prepared, (0, 10, 37))  # frame 10 blinks: lids collapse
    tris, src = prepared.mesh.triangles, prepared.mesh.points
    dsts, orders = [], []
    for target in targets:
        dst = renderer.target_points(target).copy()
        dsts.append(dst)
        orders.append(renderer.draw_order(target, dst))
    batch = gpu.run("mesh_warp", prepared.crop, src, np.stack(dsts), tris, np.stack(orders))
    assert batch.shape == (3, *prepared.crop.shape) and batch.dtype == np.uint8
    for b in range(3):
        want = mesh_warp(prepared.crop, src, dsts[b], tris, orders[b], map_scale=1.0)
        diff = np.abs(batch[b].astype(int) - want)
        assert diff.mean() < WARP_MEAN_ABS, f"item {b}"
        assert (diff.max(axis=2) > 8).mean() < WARP_FRACTION_OVER_8, f"item {b}"
        assert np.array_equal(gpu.run("mesh_warp", prepared.crop, src, dsts[b], tris, orders[b]), batch[b])


def test_renderer_device_path(gpu: Gpu, prepared: PreparedSource) -> None:
    """MeshRenderer with the device backend vs its default CPU path (coarse map + refinement)."""
    config = EngineConfig()
    cpu = MeshRenderer(prepared, config.render)
    dev = MeshRenderer(prepared, config.render, backend=gpu.low)
    _, targets = _targets(prepared, (5, 30))
    for target in targets:
        steps: list[tuple[str, int]] = []
        out = dev.render(target, steps)
        assert [name for name, _ in steps] == ["target_points", "draw_order", "backward_map", "refine_map", "remap",
                                               "mouth_interior"]
        want = cpu.render(target)
        assert out.shape == want.shape and out.dtype == np.uint8
        diff = np.abs(out.astype(int) - want)
        assert diff.mean() < 0.6 and np.percentile(diff.max(axis=2), 99) <= 12


def test_device_warp_shares_its_result_with_torch(gpu: Gpu, prepared: PreparedSource) -> None:
    renderer, (target,) = _targets(prepared, (20,))
    dst = renderer.target_points(target).copy()
    order = renderer.draw_order(target, dst)
    warp = DeviceMeshWarp(gpu.low, prepared.crop, prepared.mesh.points, prepared.mesh.triangles)
    host = warp.warp(dst, order)
    tensor = to_torch(warp.warp_device(dst, order))
    assert tuple(tensor.shape) == prepared.crop.shape and tensor.dtype == torch.uint8
    assert np.array_equal(tensor.cpu().numpy(), host)
    assert tensor.is_cuda == (gpu.kind == "cuda")
    with pytest.raises(ValueError, match="every triangle"):
        warp.warp(dst, order[:-1])


# ----------------------------------------------------------------------------------------- blend


@pytest.mark.parametrize("color_match", [0.0, 0.7])
def test_feather_blend_matches_twin(gpu: Gpu, color_match: float) -> None:
    image = data.astronaut()
    background = image[100:356, 100:356]
    foreground = np.clip(image[110:366, 90:346].astype(int) + [25, -10, 5], 0, 255).astype(np.uint8)
    mask = feather_mask(256, 0.15)
    want = feather_blend(background, foreground, mask, color_match=color_match)
    got = gpu.run("feather_blend", background, foreground, mask, color_match=color_match)
    diff = np.abs(got.astype(int) - want)
    if color_match == 0.0:
        assert np.array_equal(got, want)
    else:  # statistics reduced in another order (f64 on the device, f32 BLAS on the CPU): rare ±1
        assert diff.max() <= 1 and (diff > 0).mean() < BLEND_MATCHED_FRACTION_OFF_BY_1


# ---------------------------------------------------------------------------------------- colour


@pytest.mark.parametrize("full_range", [False, True])
def test_yuv420_conversions_match_twin_exactly(gpu: Gpu, full_range: bool) -> None:
    rng = np.random.default_rng(8)
    for rgb in (rng.integers(0, 256, (18, 34, 3), dtype=np.uint8), data.astronaut()):
        i420 = color_convert.rgb_to_i420(rgb, full_range)
        nv12 = color_convert.rgb_to_nv12(rgb, full_range)
        assert np.array_equal(gpu.run("rgb_to_i420", rgb, full_range), i420)
        assert np.array_equal(gpu.run("rgb_to_nv12", rgb, full_range), nv12)
        assert np.array_equal(gpu.run("i420_to_rgb", i420, full_range), color_convert.i420_to_rgb(i420, full_range))
        assert np.array_equal(gpu.run("nv12_to_rgb", nv12, full_range), color_convert.nv12_to_rgb(nv12, full_range))
    with pytest.raises(ValueError, match="even"):
        gpu.low.rgb_to_i420(np.zeros((7, 8, 3), np.uint8))


# ------------------------------------------------------------------------------------ 5-D sampling


def test_grid_sample_3d_f32_matches_torch_and_twin(gpu: Gpu) -> None:
    rng = np.random.default_rng(9)
    volume = rng.normal(size=(2, 5, 6, 7, 8)).astype(np.float32)
    grid = rng.uniform(-1.3, 1.3, (2, 3, 4, 5, 3)).astype(np.float32)
    grid[1, 0, 0, 0] = [40.0, -3.0, 0.2]
    ref = F.grid_sample(torch.from_numpy(volume), torch.from_numpy(grid), align_corners=False).numpy()
    got = gpu.run("grid_sample_3d", volume, grid)
    assert np.abs(got - ref).max() <= GRID_SAMPLE_F32_ATOL
    assert np.abs(got - grid_sample_3d(volume, grid)).max() <= GRID_SAMPLE_F32_ATOL
    assert np.all(got[1, :, 0, 0, 0] == 0.0)


def test_grid_sample_3d_f16_accumulates_in_f32(gpu: Gpu) -> None:
    rng = np.random.default_rng(10)
    volume = rng.normal(size=(1, 8, 4, 16, 16)).astype(np.float16)
    grid = rng.uniform(-1.1, 1.1, (1, 4, 16, 16, 3)).astype(np.float16)
    ref = F.grid_sample(torch.from_numpy(volume.astype(np.float32)), torch.from_numpy(grid.astype(np.float32)),
                        align_corners=False).numpy()
    got = gpu.run("grid_sample_3d", volume, grid)
    assert got.dtype == np.float16
    assert np.all(np.abs(got.astype(np.float32) - ref) <= 2e-3 + 2e-3 * np.abs(ref))  # one fp16 rounding


def test_grid_sample_3d_takes_torch_tensors(gpu: Gpu) -> None:
    """DLPack in: a torch tensor on the backend's device is sampled without a host round trip."""
    if gpu.kind == "cuda":
        volume = torch.randn(1, 3, 4, 5, 6, device="cuda")
        grid = torch.rand(1, 2, 3, 4, 3, device="cuda") * 2 - 1
    else:
        volume, grid = torch.randn(1, 3, 4, 5, 6), torch.rand(1, 2, 3, 4, 3) * 2 - 1
    got = torch.from_dlpack(gpu.low.grid_sample_3d(volume, grid))
    ref = F.grid_sample(volume, grid, align_corners=False)
    assert got.device == ref.device and torch.allclose(got, ref, atol=GRID_SAMPLE_F32_ATOL)


def test_emulated_launch_checks_argument_types() -> None:
    """The emulation rejects what CuPy would pass wrongly: Python ints (sent as 64-bit) and wrong dtypes."""
    if not cuda_emulation.compiler_available():
        pytest.skip("g++ is not installed")
    kernel = cuda_emulation.EmulatedModule().get_function("lp_yuv420_to_rgb")
    buf = np.zeros(24, np.uint8)
    good = (buf, buf[16:], buf[20:], np.int32(1), np.int32(2), np.int32(4), np.int32(4), np.int32(0),
            np.zeros((4, 4, 3), np.uint8))
    kernel((1,), (1,), good)
    with pytest.raises(TypeError, match="np.int32|int32"):
        kernel((1,), (1,), (*good[:3], 1, *good[4:]))
    with pytest.raises(TypeError, match=r"unsigned char\*"):
        kernel((1,), (1,), (buf.astype(np.float32), *good[1:]))
