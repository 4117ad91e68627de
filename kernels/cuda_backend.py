"""The GPU backend: CuPy arrays and the kernels of :mod:`livepuppet.kernels.cuda_source`, behind the same
method names and signatures as the CPU twins (:class:`livepuppet.kernels.backend.CpuBackend`).

The class is written against an array module ``xp`` and a compiled ``module`` (``get_function(name)``
returning a CuPy-style ``f(grid, block, args)``), never importing CuPy itself: :func:`load_cuda_backend`
passes ``cupy`` and a ``cupy.RawModule``; the tests pass NumPy and the C++ emulation of the same source
(:mod:`livepuppet.kernels.cuda_emulation`). Arrays given as host NumPy arrays are copied to the device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from livepuppet.errors import DependencyError
from livepuppet.kernels.blend import color_match_affine
from livepuppet.kernels.color_convert import check_even_rgb, check_yuv420
from livepuppet.kernels.cuda_source import CUDA_SOURCE, KERNEL_NAMES
from livepuppet.kernels.grid_sample_3d import check_grid_sample_3d
from livepuppet.kernels.mesh_raster import Box
from livepuppet.kernels.remap import check_remap

THREADS = 256  # threads per block for the one-thread-per-element kernels
RASTER_THREADS = 128  # threads per block walking one triangle's bounding box
MAX_BLOCKS = 1 << 20  # grid-stride loops cover the rest

Array = Any  # cupy.ndarray on the GPU (numpy.ndarray under the CPU emulation)


class CudaBackend:
    """GPU kernels with the CPU twins' signatures; outputs are device arrays. Not thread-safe per stream."""

    name = "cuda"

    def __init__(self, xp: Any, module: Any, poison: int | None = None) -> None:
        """``poison`` (tests): fill every output before its kernel runs, integer outputs with this value and
        float ones with NaN; two runs with 0 and 255 prove that every byte of an output is written."""
        self.xp = xp
        self._fn = {name: module.get_function(name) for name in KERNEL_NAMES}
        self._poison = poison

    def _empty(self, shape: tuple[int, ...], dtype: Any) -> Array:
        if self._poison is None:
            return self.xp.empty(shape, dtype=dtype)
        value = float("nan") if np.dtype(dtype).kind == "f" else self._poison
        return self.xp.full(shape, value, dtype=dtype)

    # ------------------------------------------------------------------------------ plumbing
    def asarray(self, array: Any, dtype: Any = None) -> Array:
        """A C-contiguous device array (copied from the host if needed)."""
        return self.xp.ascontiguousarray(self.xp.asarray(array, dtype=dtype))

    def to_host(self, array: Any) -> np.ndarray:
        """Device → host (``numpy.ndarray``)."""
        get = getattr(array, "get", None)
        return np.asarray(get() if callable(get) else array)

    def _launch(self, name: str, n: int, args: tuple[Any, ...], threads: int = THREADS) -> None:
        blocks = max(1, min((int(n) + threads - 1) // threads, MAX_BLOCKS))
        self._fn[name]((blocks,), (threads,), args)

    # ------------------------------------------------------------------------------ mesh
    def _batched_mesh(self, src: Any, dst: Any, tris: Any, order: Any) -> tuple[Array, ...]:
        xp = self.xp
        d = self.asarray(dst, xp.float32)
        d = d if d.ndim == 3 else d[None]
        s = self.asarray(src, xp.float32)
        s = s if s.ndim == 3 else s[None]
        o = self.asarray(order, xp.int32)
        o = o if o.ndim == 2 else o[None]
        n = max(len(d), len(s), len(o))
        d, s, o = (xp.ascontiguousarray(xp.broadcast_to(a, (n, *a.shape[1:]))) for a in (d, s, o))
        t = self.asarray(tris, xp.int32)
        if s.shape != d.shape or t.ndim != 2 or t.shape[1] != 3 or o.shape[1] > len(t):
            raise ValueError(f"mesh shapes disagree: src {src.shape}, dst {dst.shape}, tris {tris.shape}, "
                             f"order {order.shape}")
        return s, d, t, o

    def _affines(self, s: Array, d: Array, t: Array) -> Array:
        n, p = s.shape[:2]
        aff = self._empty((n, len(t), 6), dtype=self.xp.float32)
        self._launch("lp_triangle_affines", n * len(t), (s, d, t, np.int32(n), np.int32(p), np.int32(len(t)), aff))
        return aff

    def _ranks(self, d: Array, t: Array, o: Array, h: int, w: int) -> tuple[Array, Array]:
        """Rank buffer (B, h, w) int32 and the draw order padded to (B, T)."""
        xp = self.xp
        n, k = o.shape
        ranks = xp.full((n, len(t)), -1, dtype=xp.int32)
        ranks[xp.arange(n)[:, None], o] = xp.arange(k, dtype=xp.int32)[None, :]
        padded = xp.zeros((n, len(t)), dtype=xp.int32)
        padded[:, :k] = o
        buf = xp.full((n, h, w), -1, dtype=xp.int32)
        blocks = max(1, min(n * len(t), MAX_BLOCKS))
        self._fn["lp_raster_ranks"]((blocks,), (RASTER_THREADS,), (
            d, t, ranks, np.int32(n), np.int32(d.shape[1]), np.int32(len(t)), np.float32(1.0), np.float32(1.0),
            np.int32(h), np.int32(w), buf))
        return buf, padded

    def triangle_affines(self, src: Any, dst: Any, tris: Any) -> Array:
        """``(T, 6) f32`` target→source affine per triangle (``(B, T, 6)`` for batched ``dst``)."""
        s, d, t, _ = self._batched_mesh(src, dst, tris, np.zeros(0, np.int32))
        aff = self._affines(s, d, t)
        return aff if np.ndim(dst) == 3 else aff[0]

    def mesh_backward_map(self, src: Any, dst: Any, tris: Any, size: tuple[int, int], order: Any,
                          map_scale: float = 1.0, boxes: Sequence[Box] = ()) -> tuple[Array, Array]:
        """Exact full-resolution backward map ``(h, w) f32`` ×2 (``map_scale`` and ``boxes`` unused)."""
        s, d, t, o = self._batched_mesh(src, dst, tris, order)
        h, w = size
        aff = self._affines(s, d, t)
        buf, padded = self._ranks(d, t, o, h, w)
        n = len(d)
        map_x = self._empty((n, h, w), self.xp.float32)
        map_y = self._empty((n, h, w), self.xp.float32)
        self._launch("lp_map_from_ranks", n * h * w, (
            buf, padded, aff, np.int32(n), np.int32(len(t)), np.int32(h), np.int32(w), np.float32(1.0),
            np.float32(1.0), map_x, map_y))
        return (map_x, map_y) if np.ndim(dst) == 3 else (map_x[0], map_y[0])

    def mesh_warp(self, images: Any, src: Any, dst: Any, tris: Any, order: Any, map_scale: float = 1.0,
                  boxes: Sequence[Sequence[Box]] | None = None) -> Array:
        """Warped ``(B, H, W, C) u8`` (``(H, W, C)`` unbatched) in three launches: affines, painter's-order
        rasterization, fused map + bilinear sampling (``map_scale`` and ``boxes`` unused: exact map)."""
        img = self.asarray(images)
        if img.dtype != self.xp.uint8 or img.ndim not in (3, 4):
            raise ValueError(f"mesh_warp warps (B, H, W, C) or (H, W, C) uint8 images, got {img.shape} {img.dtype}")
        batched = img.ndim == 4 or np.ndim(dst) == 3
        img4 = img if img.ndim == 4 else img[None]
        s, d, t, o = self._batched_mesh(src, dst, tris, order)
        n = max(len(d), len(img4))
        if len(d) != n:
            s, d, o = (self.xp.ascontiguousarray(self.xp.broadcast_to(a, (n, *a.shape[1:]))) for a in (s, d, o))
        if len(img4) not in (1, n):
            raise ValueError(f"batch sizes differ: images {len(img4)}, meshes {n}")
        _, hh, ww, c = img4.shape
        aff = self._affines(s, d, t)
        buf, padded = self._ranks(d, t, o, hh, ww)
        out = self._empty((n, hh, ww, c), self.xp.uint8)
        stride = 0 if len(img4) == 1 else hh * ww * c
        self._launch("lp_mesh_remap_u8", n * hh * ww, (
            img4, np.int32(hh), np.int32(ww), np.int32(c), np.int64(stride), buf, padded, aff, np.int32(n),
            np.int32(len(t)), np.int32(hh), np.int32(ww), out))
        return out if batched else out[0]

    # ------------------------------------------------------------------------------ remap
    def remap_batch(self, images: Any, map_x: Any, map_y: Any) -> Array:
        """Bilinear remap with replicated border (OpenCV's fixed point): see ``kernels.remap.remap_batch``."""
        xp = self.xp
        img = self.asarray(images)
        n, batched = check_remap(img.shape, np.shape(map_x), np.dtype(str(img.dtype)))
        mx, my = self.asarray(map_x, xp.float32), self.asarray(map_y, xp.float32)
        img4 = img if img.ndim == 4 else img[None]
        mx3, my3 = (mx, my) if mx.ndim == 3 else (mx[None], my[None])
        _, hh, ww, c = img4.shape
        h, w = mx3.shape[1:]
        out = self._empty((n, h, w, c), img.dtype)
        kernel = "lp_remap_u8" if img.dtype == xp.uint8 else "lp_remap_f32"
        self._launch(kernel, n * h * w, (
            img4, np.int32(hh), np.int32(ww), np.int32(c), np.int64(0 if len(img4) == 1 else hh * ww * c), mx3, my3,
            np.int64(0 if len(mx3) == 1 else h * w), np.int32(n), np.int32(h), np.int32(w), out))
        return out if batched else out[0]

    # ------------------------------------------------------------------------------ blend
    def masked_color_stats(self, image: Array, mask: Array) -> tuple[np.ndarray, np.ndarray]:
        """Mask-weighted RGB mean (3,) and covariance (3, 3), reduced on the device, returned on the host."""
        xp = self.xp
        wgt = mask.astype(xp.float64).ravel()
        total = max(float(wgt.sum()), 1e-9)
        px = image.reshape(-1, 3).astype(xp.float64)
        mean = wgt @ px / total
        centred = px - mean
        cov = (centred * wgt[:, None]).T @ centred / total
        return self.to_host(mean), self.to_host(cov)

    def feather_blend(self, background: Any, foreground: Any, mask: Any, color_match: float = 0.0) -> Array:
        """Feathered paste-back with optional colour matching: see ``kernels.blend.feather_blend``."""
        if not 0.0 <= color_match <= 1.0:
            raise ValueError(f"color_match is a strength in [0, 1], got {color_match}")
        xp = self.xp
        bg, fg, m = self.asarray(background), self.asarray(foreground), self.asarray(mask, xp.float32)
        if bg.shape != fg.shape or bg.shape[:2] != m.shape or bg.ndim != 3 or bg.shape[2] != 3:
            raise ValueError(f"expected (h, w, 3) images and an (h, w) mask, got {bg.shape}, {fg.shape}, {m.shape}")
        affine = np.zeros((3, 4), np.float32)
        if color_match > 0.0:
            fg_mean, fg_cov = self.masked_color_stats(fg, m)
            bg_mean, bg_cov = self.masked_color_stats(bg, m)
            affine = color_match_affine(fg_mean, fg_cov, bg_mean, bg_cov, color_match)
        out = self._empty(bg.shape, bg.dtype)
        n = bg.shape[0] * bg.shape[1]
        self._launch("lp_feather_blend_u8", n, (
            bg, fg, m, self.asarray(affine), np.int32(color_match > 0.0), np.int64(n), out))
        return out

    # ------------------------------------------------------------------------------ colour
    def _to_yuv420(self, rgb: Any, full_range: bool, nv12: bool) -> Array:
        img = self.asarray(rgb)
        h, w = check_even_rgb(tuple(img.shape), img.dtype)
        out = self._empty((h * 3 // 2, w), self.xp.uint8)
        flat = out.ravel()
        q = (h // 2) * (w // 2)
        if nv12:
            up, vp, step, row = flat[h * w:], flat[h * w + 1:], 2, w
        else:
            up, vp, step, row = flat[h * w: h * w + q], flat[h * w + q:], 1, w // 2
        self._launch("lp_rgb_to_yuv420", q, (
            img, np.int32(h), np.int32(w), np.int32(full_range), flat, up, vp, np.int32(step), np.int32(row)))
        return out

    def _from_yuv420(self, yuv: Any, full_range: bool, nv12: bool) -> Array:
        buf = self.asarray(yuv)
        h, w = check_yuv420(tuple(buf.shape), buf.dtype)
        flat = buf.ravel()
        q = (h // 2) * (w // 2)
        if nv12:
            up, vp, step, row = flat[h * w:], flat[h * w + 1:], 2, w
        else:
            up, vp, step, row = flat[h * w: h * w + q], flat[h * w + q:], 1, w // 2
        out = self._empty((h, w, 3), self.xp.uint8)
        self._launch("lp_yuv420_to_rgb", h * w, (
            flat, up, vp, np.int32(step), np.int32(row), np.int32(h), np.int32(w), np.int32(full_range), out))
        return out

    def rgb_to_i420(self, rgb: Any, full_range: bool = False) -> Array:
        """``(H, W, 3) u8`` → ``(H * 3 // 2, W) u8`` I420; see ``kernels.color_convert``."""
        return self._to_yuv420(rgb, full_range, nv12=False)

    def rgb_to_nv12(self, rgb: Any, full_range: bool = False) -> Array:
        """``(H, W, 3) u8`` → ``(H * 3 // 2, W) u8`` NV12."""
        return self._to_yuv420(rgb, full_range, nv12=True)

    def i420_to_rgb(self, yuv: Any, full_range: bool = False) -> Array:
        """``(H * 3 // 2, W) u8`` I420 → ``(H, W, 3) u8``."""
        return self._from_yuv420(yuv, full_range, nv12=False)

    def nv12_to_rgb(self, yuv: Any, full_range: bool = False) -> Array:
        """``(H * 3 // 2, W) u8`` NV12 → ``(H, W, 3) u8``."""
        return self._from_yuv420(yuv, full_range, nv12=True)

    # ------------------------------------------------------------------------------ 5-D sampling
    def grid_sample_3d(self, volume: Any, grid: Any) -> Array:
        """torch ``grid_sample`` 5-D (trilinear, zeros, ``align_corners=False``); f32 or f16 (accumulating in
        f32); ``grid`` takes the volume's dtype. Torch tensors on the GPU are shared through DLPack."""
        xp = self.xp
        vol = self._from_any(volume)
        if vol.dtype not in (xp.float32, xp.float16):
            raise ValueError(f"grid_sample_3d samples float32 or float16 volumes, not {vol.dtype}")
        g = self.xp.ascontiguousarray(self._from_any(grid).astype(vol.dtype, copy=False))
        check_grid_sample_3d(tuple(vol.shape), tuple(g.shape))
        n, c, d, h, w = vol.shape
        do, ho, wo = g.shape[1:4]
        out = self._empty((n, c, do, ho, wo), vol.dtype)
        kernel = "lp_grid_sample_3d_f32" if vol.dtype == xp.float32 else "lp_grid_sample_3d_f16"
        self._launch(kernel, n * do * ho * wo, (
            vol, g, np.int32(n), np.int32(c), np.int32(d), np.int32(h), np.int32(w), np.int32(do), np.int32(ho),
            np.int32(wo), out))
        return out

    def _from_any(self, array: Any) -> Array:
        """Device array from a device/host array or a torch tensor (zero-copy via DLPack on the GPU)."""
        if type(array).__module__.startswith("torch") and hasattr(self.xp, "from_dlpack"):
            if getattr(array, "is_cuda", False) or self.xp is np:
                return self.xp.ascontiguousarray(self.xp.from_dlpack(array.contiguous()))
            array = array.numpy()
        return self.asarray(array)


def load_cuda_backend() -> CudaBackend:
    """Import CuPy, check for a CUDA device and compile the kernels (once); a DependencyError saying what
    to install or check when that is not possible."""
    try:
        import cupy
    except ImportError as exc:
        raise DependencyError(
            "render.device = 'cuda' needs CuPy and an NVIDIA GPU: pip install 'livepuppet[gpu]' (or cupy-cuda12x / "
            f"cupy-cuda13x matching your CUDA driver), or use render.device=cpu ({exc})") from exc
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except (RuntimeError, OSError) as exc:  # CUDARuntimeError (a RuntimeError) or a driver library not found
        raise DependencyError(f"CuPy is installed but no CUDA driver/device is usable ({exc}); "
                              "use render.device=cpu") from exc
    if count == 0:
        raise DependencyError("CuPy found no CUDA device; use render.device=cpu")
    module = cupy.RawModule(code=CUDA_SOURCE)
    return CudaBackend(cupy, module)
