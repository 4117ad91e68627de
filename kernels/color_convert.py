"""RGB ↔ I420 / NV12 (4:2:0 YUV, what WebRTC and H.264/VP8 codecs exchange) on the CPU (NumPy).

BT.601 with 8-bit integer coefficients: limited ("TV") range by default, as libvpx/x264/WebRTC use, or
full ("JPEG") range. Chroma is computed from the rounded mean RGB of each 2×2 block and upsampled by
replication. The GPU twin (``lp_rgb_to_yuv420`` / ``lp_yuv420_to_rgb``) uses the same integer formulas, so
the two agree exactly. Buffers have PyAV's ``to_ndarray`` layout: ``(H * 3 // 2, W) u8``, the Y plane
first, then U and V planes (I420) or one interleaved UV plane (NV12).
"""

from __future__ import annotations

import numpy as np


def check_even_rgb(shape: tuple[int, ...], dtype: object) -> tuple[int, int]:
    """(H, W) of an ``(H, W, 3) u8`` image with even sides, or a ValueError that says what to do."""
    if len(shape) != 3 or shape[2] != 3 or np.dtype(str(dtype)) != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {tuple(shape)} {dtype}")
    h, w = int(shape[0]), int(shape[1])
    if h % 2 or w % 2 or h == 0 or w == 0:
        raise ValueError(f"4:2:0 YUV needs even, non-zero width and height, got {w}x{h}: crop or pad by one pixel")
    return h, w


def check_yuv420(shape: tuple[int, ...], dtype: object) -> tuple[int, int]:
    """(H, W) of an ``(H * 3 // 2, W) u8`` 4:2:0 buffer, or a ValueError."""
    if len(shape) != 2 or np.dtype(str(dtype)) != np.uint8:
        raise ValueError(f"expected an (H * 3 // 2, W) uint8 YUV 4:2:0 buffer, got {tuple(shape)} {dtype}")
    rows, w = int(shape[0]), int(shape[1])
    if rows % 3 or w % 2 or rows == 0 or w == 0:
        raise ValueError(f"a 4:2:0 buffer of an even-sized frame has H * 3 / 2 rows and even W, got {tuple(shape)}")
    return rows * 2 // 3, w


# Integer BT.601 coefficients (×256). Every intermediate below is an integer under 2**24, so float32
# matrix products (BLAS) are exact and floor(x / 256) equals the integer shift the GPU kernels use.
_TO_YUV = {
    False: (np.array([[66, -38, 112], [129, -74, -94], [25, 112, -18]], np.float32), np.array([16, 128, 128])),
    True: (np.array([[77, -43, 128], [150, -85, -107], [29, 128, -21]], np.float32), np.array([0, 128, 128])),
}
_FROM_YUV = {  # (luma scale, luma offset, [[R, G, B] per U], [[R, G, B] per V])
    False: (298.0, 16.0, np.array([[0, -100, 516], [409, -208, 0]], np.float32)),
    True: (256.0, 0.0, np.array([[0, -88, 454], [359, -183, 0]], np.float32)),
}


def _planes_from_rgb(rgb: np.ndarray, full_range: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y (H, W), U, V (H/2, W/2) u8 planes of an (H, W, 3) u8 image with even sides."""
    h, w = check_even_rgb(rgb.shape, rgb.dtype)
    coef, offset = _TO_YUV[full_range]
    px = rgb.reshape(-1, 3).astype(np.float32)
    y = np.floor((px @ coef[:, 0] + 128.0) * (1.0 / 256.0)) + offset[0]
    block = px.reshape(h // 2, 2, w // 2, 2, 3).sum(axis=(1, 3)).reshape(-1, 3)
    mean = np.floor((block + 2.0) * 0.25)  # rounded mean of each 2x2 block, as (sum + 2) >> 2
    uv = np.floor((mean @ coef[:, 1:] + 128.0) * (1.0 / 256.0)) + offset[1:]
    planes = (y.reshape(h, w), uv[:, 0].reshape(h // 2, w // 2), uv[:, 1].reshape(h // 2, w // 2))
    return tuple(np.clip(p, 0, 255).astype(np.uint8) for p in planes)  # type: ignore[return-value]


def rgb_to_i420(rgb: np.ndarray, full_range: bool = False) -> np.ndarray:
    """``(H, W, 3) u8 RGB`` (even sides) → ``(H * 3 // 2, W) u8`` I420 (Y, then U, then V planes)."""
    y, u, v = _planes_from_rgb(rgb, full_range)
    h, w = y.shape
    return np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(h * 3 // 2, w)


def rgb_to_nv12(rgb: np.ndarray, full_range: bool = False) -> np.ndarray:
    """``(H, W, 3) u8 RGB`` (even sides) → ``(H * 3 // 2, W) u8`` NV12 (Y plane, then interleaved UV)."""
    y, u, v = _planes_from_rgb(rgb, full_range)
    h, w = y.shape
    return np.concatenate([y, np.stack([u, v], axis=-1).reshape(h // 2, w)], axis=0)


def _rgb_from_planes(y: np.ndarray, u: np.ndarray, v: np.ndarray, full_range: bool) -> np.ndarray:
    """Y (H, W), U and V (H/2, W/2) u8 → (H, W, 3) u8 RGB, chroma replicated over each 2×2 block."""
    scale, offset, chroma = _FROM_YUV[full_range]
    h, w = y.shape
    luma = (y.astype(np.float32) - offset) * scale + 128.0  # (H, W)
    de = np.stack([u, v], axis=-1).reshape(-1, 2).astype(np.float32) - 128.0
    c = (de @ chroma).reshape(h // 2, 1, w // 2, 1, 3)  # per 2x2 block, broadcast over it
    rgb = np.floor((luma.reshape(h // 2, 2, w // 2, 2, 1) + c) * (1.0 / 256.0))
    return np.clip(rgb, 0, 255).astype(np.uint8).reshape(h, w, 3)


def i420_to_rgb(yuv: np.ndarray, full_range: bool = False) -> np.ndarray:
    """``(H * 3 // 2, W) u8`` I420 → ``(H, W, 3) u8 RGB``."""
    h, w = check_yuv420(yuv.shape, yuv.dtype)
    flat = yuv.ravel()
    q = (h // 2) * (w // 2)
    y = flat[: h * w].reshape(h, w)
    u = flat[h * w: h * w + q].reshape(h // 2, w // 2)
    v = flat[h * w + q:].reshape(h // 2, w // 2)
    return _rgb_from_planes(y, u, v, full_range)


def nv12_to_rgb(yuv: np.ndarray, full_range: bool = False) -> np.ndarray:
    """``(H * 3 // 2, W) u8`` NV12 → ``(H, W, 3) u8 RGB``."""
    h, w = check_yuv420(yuv.shape, yuv.dtype)
    uv = yuv[h:].reshape(h // 2, w // 2, 2)
    return _rgb_from_planes(yuv[:h], uv[..., 0], uv[..., 1], full_range)
