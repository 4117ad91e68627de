"""Per-portrait mesh warp on a device backend: the portrait crop and mesh stay in device memory; per frame
only the target points and draw order go up and the warped crop comes back, through pinned host buffers.

Used by :class:`livepuppet.engine.render.mesh_renderer.MeshRenderer` when ``render.device = "cuda"``. With the
CPU backend or the CPU emulation of the kernels (NumPy arrays) the same code runs without pinning.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from livepuppet.kernels.backend import KernelBackend


def pinned_empty(xp: Any, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A host array in page-locked memory when ``xp`` is CuPy (fast, asynchronous H2D/D2H), else plain."""
    count = int(np.prod(shape))
    if xp is np:
        return np.empty(shape, dtype=dtype)
    mem = xp.cuda.alloc_pinned_memory(max(1, count * np.dtype(dtype).itemsize))
    return np.frombuffer(mem, dtype=dtype, count=count).reshape(shape)


def to_torch(array: Any) -> Any:
    """A torch tensor sharing ``array``'s memory (DLPack; CuPy → CUDA tensor, NumPy → CPU tensor)."""
    import torch

    return torch.from_dlpack(array)


class DeviceMeshWarp:
    """One portrait's warp on ``backend``: ``warp(dst, order)`` → crop ``(S, S, 3) u8`` on the host.
    Preallocates its device and pinned buffers; one per session, not thread-safe."""

    def __init__(self, backend: KernelBackend, crop: np.ndarray, src_points: np.ndarray, tris: np.ndarray) -> None:
        xp = backend.xp
        self._backend = backend
        self._crop = backend.asarray(crop)
        self._src = backend.asarray(src_points, xp.float32)
        self._tris = backend.asarray(tris, xp.int32)
        self._dst_host = pinned_empty(xp, src_points.shape, np.float32)
        self._order_host = pinned_empty(xp, (len(tris),), np.int32)
        self._out_host = pinned_empty(xp, crop.shape, np.uint8)
        self._dst = backend.asarray(self._dst_host)
        self._order = backend.asarray(self._order_host)
        self._stream = xp.cuda.Stream(non_blocking=True) if hasattr(xp, "cuda") else None
        if self._stream is not None:  # the uploads above ran on the null stream, which ours does not wait for
            xp.cuda.Stream.null.synchronize()

    def warp_device(self, dst: np.ndarray, order: np.ndarray) -> Any:
        """The warped crop ``(S, S, 3) u8`` left in device memory (share it with torch via :func:`to_torch`).
        ``dst (P, 2) f32`` target points; ``order (T,) int`` every triangle, back to front."""
        if len(order) != len(self._order_host):
            raise ValueError(f"the device warp draws every triangle: order has {len(order)} of {len(self._order_host)}")
        self._dst_host[...] = dst
        self._order_host[...] = order
        if self._stream is None:
            self._dst[...] = self._dst_host
            self._order[...] = self._order_host
            return self._backend.mesh_warp(self._crop, self._src, self._dst, self._tris, self._order)
        with self._stream:
            self._dst.set(self._dst_host, stream=self._stream)
            self._order.set(self._order_host, stream=self._stream)
            return self._backend.mesh_warp(self._crop, self._src, self._dst, self._tris, self._order)

    def warp(self, dst: np.ndarray, order: np.ndarray) -> np.ndarray:
        """:meth:`warp_device`, copied back to a new host array ``(S, S, 3) u8``."""
        out = self.warp_device(dst, order)
        if self._stream is None:
            self._out_host[...] = self._backend.to_host(out)
        else:
            out.get(out=self._out_host, stream=self._stream)
            self._stream.synchronize()
        return self._out_host.copy()
