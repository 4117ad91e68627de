"""Pick the kernel backend once, at load time: ``get_backend("cpu")`` (NumPy/OpenCV) or ``"cuda"`` (CuPy).

Both expose the same methods with the same signatures (``triangle_affines``, ``mesh_backward_map``,
``mesh_warp``, ``remap_batch``, ``feather_blend``, ``rgb_to_i420``, ``i420_to_rgb``, ``rgb_to_nv12``,
``nv12_to_rgb``, ``grid_sample_3d``) plus ``asarray`` / ``to_host`` to move arrays to and from the
backend's memory; CPU arrays are NumPy arrays, CUDA ones CuPy arrays. CuPy is imported only for "cuda".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from livepuppet.errors import ConfigError
from livepuppet.kernels import blend, color_convert, grid_sample_3d, mesh_raster, mesh_warp, remap
from livepuppet.kernels.mesh_raster import Box

DEVICES = ("cpu", "cuda")


class KernelBackend(Protocol):
    """What the engine calls; arrays are the backend's own (``xp.ndarray``)."""

    @property
    def name(self) -> str: ...
    @property
    def xp(self) -> Any: ...

    def asarray(self, array: Any, dtype: Any = None) -> Any: ...
    def to_host(self, array: Any) -> np.ndarray: ...
    def triangle_affines(self, src: Any, dst: Any, tris: Any) -> Any: ...
    def mesh_backward_map(self, src: Any, dst: Any, tris: Any, size: tuple[int, int], order: Any,
                          map_scale: float = 1.0, boxes: Sequence[Box] = ()) -> tuple[Any, Any]: ...
    def mesh_warp(self, images: Any, src: Any, dst: Any, tris: Any, order: Any, map_scale: float = 1.0,
                  boxes: Sequence[Sequence[Box]] | None = None) -> Any: ...
    def remap_batch(self, images: Any, map_x: Any, map_y: Any) -> Any: ...
    def feather_blend(self, background: Any, foreground: Any, mask: Any, color_match: float = 0.0) -> Any: ...
    def rgb_to_i420(self, rgb: Any, full_range: bool = False) -> Any: ...
    def i420_to_rgb(self, yuv: Any, full_range: bool = False) -> Any: ...
    def rgb_to_nv12(self, rgb: Any, full_range: bool = False) -> Any: ...
    def nv12_to_rgb(self, yuv: Any, full_range: bool = False) -> Any: ...
    def grid_sample_3d(self, volume: Any, grid: Any) -> Any: ...


class CpuBackend:
    """The NumPy/OpenCV twins (the functions of the ``kernels`` modules), as a backend object."""

    name = "cpu"
    xp = np

    @staticmethod
    def asarray(array: Any, dtype: Any = None) -> np.ndarray:
        return np.ascontiguousarray(array, dtype=dtype)

    @staticmethod
    def to_host(array: Any) -> np.ndarray:
        return np.asarray(array)

    triangle_affines = staticmethod(mesh_warp.triangle_affines)
    mesh_backward_map = staticmethod(mesh_raster.mesh_backward_map)
    mesh_warp = staticmethod(mesh_raster.mesh_warp)
    remap_batch = staticmethod(remap.remap_batch)
    feather_blend = staticmethod(blend.feather_blend)
    rgb_to_i420 = staticmethod(color_convert.rgb_to_i420)
    i420_to_rgb = staticmethod(color_convert.i420_to_rgb)
    rgb_to_nv12 = staticmethod(color_convert.rgb_to_nv12)
    nv12_to_rgb = staticmethod(color_convert.nv12_to_rgb)
    grid_sample_3d = staticmethod(grid_sample_3d.grid_sample_3d)


def get_backend(device: str) -> KernelBackend:
    """The backend for ``device`` ("cpu" or "cuda"); for "cuda" this imports CuPy and compiles the kernels
    (a DependencyError naming the package when CuPy or a GPU is missing). Call once at load time."""
    if device == "cpu":
        return CpuBackend()
    if device == "cuda":
        from livepuppet.kernels.cuda_backend import load_cuda_backend

        return load_cuda_backend()
    raise ConfigError(f"unknown kernel device {device!r}; use one of {', '.join(DEVICES)}")
