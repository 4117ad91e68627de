"""Feathered blending on the CPU (OpenCV): the twin of the GPU blend kernel."""

from __future__ import annotations

import cv2
import numpy as np


def feather_mask(side: int, feather: float) -> np.ndarray:
    """Square mask ``(side, side) f32``: 1 inside, easing (smoothstep) to 0 over ``feather × side``
    pixels at every edge, so a pasted square leaves no visible seam."""
    width = max(1.0, feather * side)
    ramp = (np.arange(side, dtype=np.float32) + 0.5) / width
    edge = np.minimum(ramp, ramp[::-1])
    edge = np.clip(edge, 0.0, 1.0)
    edge = edge * edge * (3.0 - 2.0 * edge)
    return np.minimum(edge[:, None], edge[None, :]).astype(np.float32)


def feather_blend(background: np.ndarray, foreground: np.ndarray, mask: np.ndarray,
                  color_match: float = 0.0) -> np.ndarray:
    """``background * (1 - mask) + foreground * mask`` for (h, w, 3) u8 images and an (h, w) f32 mask
    in [0, 1]; returns a new (h, w, 3) u8 image (rounded).

    ``color_match`` in [0, 1] first moves the foreground's colour statistics (mask-weighted mean and
    standard deviation per YCbCr channel) toward the background's: use it when the rendered face drifts
    in colour from the frame it goes back into (neural renderers). 0 (default) leaves it untouched."""
    if not 0.0 <= color_match <= 1.0:
        raise ValueError(f"color_match is a strength in [0, 1], got {color_match}")
    if color_match > 0.0:
        fg_mean, fg_cov = masked_color_stats(foreground, mask)
        bg_mean, bg_cov = masked_color_stats(background, mask)
        foreground = apply_color_affine(foreground, color_match_affine(fg_mean, fg_cov, bg_mean, bg_cov, color_match))
    inverse = 1.0 - mask
    return cv2.blendLinear(foreground, background, mask, inverse)


# Full-range BT.601 RGB → YCbCr (JFIF): colour matching works on luma and chroma separately.
_RGB_TO_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def masked_color_stats(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mask-weighted mean (3,) and covariance (3, 3) f64 of the RGB values of ``image (h, w, 3) u8``
    (sums in f32 BLAS: relative error ~1e-5, far below what colour matching can show)."""
    wgt = mask.astype(np.float32, copy=False).ravel()
    total = max(float(wgt.sum(dtype=np.float64)), 1e-9)
    px = image.reshape(-1, 3).astype(np.float32)
    mean = (wgt @ px).astype(np.float64) / total
    second = ((px * wgt[:, None]).T @ px).astype(np.float64) / total  # raw moments: no centred copy
    return mean, second - np.outer(mean, mean)


def color_match_affine(fg_mean: np.ndarray, fg_cov: np.ndarray, bg_mean: np.ndarray, bg_cov: np.ndarray,
                       strength: float) -> np.ndarray:
    """(3, 4) f32 affine on RGB that moves the foreground's per-channel YCbCr mean and standard deviation
    toward the background's (Reinhard-style transfer), by ``strength`` in [0, 1] (0: identity)."""
    m = _RGB_TO_YCC
    fg_std = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", m, fg_cov, m), 0.0))
    bg_std = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", m, bg_cov, m), 0.0))
    ratio = np.where(fg_std > 1e-3, bg_std / np.maximum(fg_std, 1e-3), 1.0)
    gain = 1.0 + strength * (np.clip(ratio, 0.25, 4.0) - 1.0)  # per YCbCr channel
    # ycc' = gain * (ycc - ycc_fg_mean) + ycc_fg_mean + strength * (ycc_bg_mean - ycc_fg_mean), in RGB
    lin = np.linalg.inv(m) @ np.diag(gain) @ m
    target_mean = fg_mean + strength * (bg_mean - fg_mean)
    bias = target_mean - lin @ fg_mean
    return np.concatenate([lin, bias[:, None]], axis=1).astype(np.float32)


def apply_color_affine(image: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """``image (h, w, 3) u8`` through a (3, 4) RGB affine in f32, clamped and rounded (half to even) to u8."""
    out = image.reshape(-1, 3).astype(np.float32) @ affine[:, :3].T
    out += affine[:, 3]
    np.clip(out, 0.0, 255.0, out=out)
    return np.rint(out, out=out).astype(np.uint8).reshape(image.shape)
