"""Paste-back: the animated crop goes back into the full portrait under a feathered mask.

The renderer keeps the crop border fixed, so the crop's edge already matches the portrait; the feather
hides the resampling difference. Where the rendered crop equals the portrait's own crop (the background,
the body far from the head) the portrait's original pixels stay: the round trip through the crop's
resolution would blur them (≈ 8% of the gradient energy at the collar, a third on a close-up whose crop
is smaller than its box). What moved outside the face is warped from the photo at its own resolution
(:mod:`livepuppet.engine.render.full_resolution`) when the renderer says how it drew the crop. Everything
that depends only on the portrait is computed once.
"""

from __future__ import annotations

import cv2
import numpy as np
from livepuppet.engine.config import CompositeConfig
from livepuppet.engine.render.full_resolution import CropWarp, FullResolutionWarp, worth_it
from livepuppet.engine.source import PreparedSource
from livepuppet.kernels.blend import feather_blend, feather_mask


class Compositor:
    """Per-portrait paste-back with preallocated output; not thread-safe."""

    def __init__(self, source: PreparedSource, config: CompositeConfig) -> None:
        image = source.image
        h, w = image.shape[:2]
        box = source.box
        self._side = box.side
        self._color_match = config.color_match
        # The part of the crop box that lies inside the image, in image and in box coordinates.
        ix0, iy0 = max(0, box.x0), max(0, box.y0)
        ix1, iy1 = min(w, box.x0 + box.side), min(h, box.y0 + box.side)
        self._image_roi = (slice(iy0, iy1), slice(ix0, ix1))
        self._box_roi = (slice(iy0 - box.y0, iy1 - box.y0), slice(ix0 - box.x0, ix1 - box.x0))
        mask = feather_mask(box.side, config.feather)
        self._mask = np.ascontiguousarray(mask[self._box_roi])
        self._background = image
        self._out = image.copy()
        self._source_crop = source.crop
        self._full_resolution = FullResolutionWarp(source, self._image_roi) \
            if config.full_resolution and worth_it(source) else None

    @property
    def mask(self) -> np.ndarray:
        """The feather mask over the in-image part of the crop box: (h, w) f32 in [0, 1]."""
        return self._mask

    @property
    def image_roi(self) -> tuple[slice, slice]:
        return self._image_roi

    def composite(self, crop: np.ndarray, warp: CropWarp | None = None) -> np.ndarray:
        """Rendered crop ``(S, S, 3) u8`` → full portrait ``(H, W, 3) u8`` (a new array each call). ``warp``:
        how the crop was drawn (mesh renderer), for the full-resolution paste-back outside the face."""
        size = crop.shape[0]
        interp = cv2.INTER_AREA if size > self._side else cv2.INTER_LINEAR
        up = cv2.resize(crop, (self._side, self._side), interpolation=interp)
        if warp is not None and self._full_resolution is not None and size == self._source_crop.shape[0]:
            self._full_resolution.apply(up[self._box_roi], warp)
        mask = self._mask
        if crop.shape == self._source_crop.shape:
            changed = cv2.resize(changed_weight(crop, self._source_crop), (self._side, self._side),
                                 interpolation=cv2.INTER_LINEAR)
            mask = mask * changed[self._box_roi]
        out = self._out
        roi = self._image_roi
        out[roi] = feather_blend(self._background[roi], up[self._box_roi], mask, self._color_match)
        return out.copy()


CHANGE_LEVELS = (1.0, 4.0)  # blurred per-pixel difference (u8 levels): unchanged below the first, changed above


def changed_weight(crop: np.ndarray, source_crop: np.ndarray) -> np.ndarray:
    """``(S, S) f32`` in [0, 1]: 0 where the rendered crop equals the portrait's crop, easing (smoothstep)
    to 1 where it differs, over a difference blurred by a couple of pixels so the edge of the moved
    region is soft."""
    r, g, b = cv2.split(cv2.absdiff(crop, source_crop))
    diff = cv2.max(cv2.max(r, g), b)
    diff = cv2.GaussianBlur(cv2.dilate(diff, _DILATE), (0, 0), 1.5)
    return cv2.LUT(diff, _CHANGE_LUT)


def _change_lut() -> np.ndarray:
    lo, hi = CHANGE_LEVELS
    t = np.clip((np.arange(256, dtype=np.float32) - lo) / (hi - lo), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32).reshape(1, 256)


_DILATE = np.ones((3, 3), np.uint8)
_CHANGE_LUT = _change_lut()
