"""Paste-back at the photo's own resolution outside the face: the portrait warped once, by the crop's map.

Pasting the animated crop back resamples what moved twice (photo → crop → photo). Where the crop is
coarser than its box (a close-up) detail is lost; where it is finer the downscale still softens: a collar or
a tie that follows the head lost a sixth of its gradient energy on a head-and-shoulders photo, half on a
close-up. Outside the face the renderer's backward map is continuous (ring triangles only: no folds, no
closing lids, no painted mouth), so it is carried to photo pixels and the photo is sampled once, bicubic.
The face (its bounding box, with a gap) keeps the rendered crop; the two meet over a soft band beyond it,
where both show the same content.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from livepuppet.engine.source import PreparedSource

PROBE_STEP = 8  # crop pixels between the map samples that find the moved region
MOVED_PX = 1e-3  # crop pixels: map samples moved by less than this count as still
FACE_GAP = 2.0  # crop pixels around the face's bounding box where the crop is kept as it is (the map jumps there)
BLEND_WIDTH = 0.06  # inter-ocular distances over which the crop gives way to the full-resolution warp
# A crop that samples its box at least twice as finely as the photo loses nothing on the way back (bilinear
# in an oversampled image, then an area downscale); bicubic at the photo's resolution would only add its
# own overshoot there (+5–10 % gradient energy at the astronaut's collar).
MIN_BOX_TO_CROP = 0.5


def worth_it(source: PreparedSource) -> bool:
    """Whether pasting ``source``'s crop back would blur what moves: its box is over half the crop's side and
    not the crop's own size (then the crop is the photo's pixels and its warp the only resampling)."""
    side = source.box.side
    return side > MIN_BOX_TO_CROP * source.crop_size and side != source.crop_size


@dataclass(frozen=True, slots=True)
class CropWarp:
    """How the renderer drew one crop: its backward map and where the face went."""

    map_xy: np.ndarray  # (S, S, 2) f32: the source-crop position each crop pixel shows; valid until the next render
    face: np.ndarray  # (N, 2) target face landmarks in crop pixels


class FullResolutionWarp:
    """One portrait's full-resolution warp over the in-image part of its crop box; not thread-safe.

    The face's bounding box (plus a gap) keeps the crop: a rectangle, so what is warped here is at most four
    rectangles around it and the blend weight is separable, which keeps the pass to a few milliseconds."""

    def __init__(self, source: PreparedSource, image_roi: tuple[slice, slice]) -> None:
        box = source.box
        rows, cols = image_roi
        self._image = source.image[image_roi]
        self._k = box.side / source.crop_size
        self._side = box.side
        # ROI pixel = box pixel - this; box pixel = (crop pixel + 0.5) k - 0.5 (the inverse of CropBox.to_crop).
        self._roi_in_box = np.array([cols.start - box.x0, rows.start - box.y0])
        self._roi_shape = (rows.stop - rows.start, cols.stop - cols.start)
        self._where = np.empty((box.side, box.side, 2), np.float32)
        self._to_roi = np.array([0.5 * self._k - 0.5, 0.5 * self._k - 0.5]) - self._roi_in_box
        self._to_roi_affine = np.array([[self._k, 0.0, self._to_roi[0]], [0.0, self._k, self._to_roi[1]]], np.float32)
        s = np.arange(0, source.crop_size, PROBE_STEP, dtype=np.float32)
        self._probe_identity = np.stack(np.meshgrid(s, s), axis=-1)
        self._gap_px = FACE_GAP * max(self._k, 1.0)
        self._blend_px = max(2.0, BLEND_WIDTH * source.pose.scale * self._k)

    def _to_roi_px(self, crop_px: np.ndarray) -> np.ndarray:
        return crop_px * self._k + self._to_roi

    def moved_rect(self, map_xy: np.ndarray) -> tuple[int, int, int, int] | None:
        """ROI pixels ``(x0, y0, x1, y1)`` of a rectangle that holds every map sample that moved, with a probe
        step's margin; None when nothing moved. What it misses keeps the crop's paste-back: it only saves work."""
        probe = map_xy[::PROBE_STEP, ::PROBE_STEP] - self._probe_identity
        moved = np.abs(probe).max(axis=2) > MOVED_PX
        rows, cols = np.flatnonzero(moved.any(axis=1)), np.flatnonzero(moved.any(axis=0))
        if len(rows) == 0:
            return None
        lo = self._to_roi_px(np.array([cols[0] - 1, rows[0] - 1], np.float64) * PROBE_STEP)
        hi = self._to_roi_px(np.array([cols[-1] + 1, rows[-1] + 1], np.float64) * PROBE_STEP)
        h, w = self._roi_shape
        x0, y0 = max(0, int(np.floor(lo[0]))), max(0, int(np.floor(lo[1])))
        x1, y1 = min(w, int(np.ceil(hi[0])) + 1), min(h, int(np.ceil(hi[1])) + 1)
        return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None

    def face_zone(self, face: np.ndarray) -> tuple[int, int, int, int]:
        """ROI pixels ``(x0, y0, x1, y1)`` of the face's bounding box grown by the gap: the crop stays there."""
        pts = self._to_roi_px(face.astype(np.float64))
        lo, hi = pts.min(axis=0) - self._gap_px, pts.max(axis=0) + self._gap_px
        return int(np.floor(lo[0])), int(np.floor(lo[1])), int(np.ceil(hi[0])) + 1, int(np.ceil(hi[1])) + 1

    def map_to_roi(self, map_xy: np.ndarray) -> np.ndarray:
        """The crop's backward map at every box pixel, in ROI pixels of the photo: ``(side, side, 2) f32``
        (a scratch buffer)."""
        where = self._where
        if self._side == map_xy.shape[0]:
            return cv2.transform(map_xy, self._to_roi_affine, dst=where)
        # resize's pixel-centre grid is exactly the box ↔ crop correspondence
        cv2.resize(map_xy, (self._side, self._side), dst=where, interpolation=cv2.INTER_LINEAR)
        return cv2.transform(where, self._to_roi_affine, dst=where)

    def apply(self, up: np.ndarray, warp: CropWarp) -> None:
        """Replace, in ``up`` (the upsampled crop over the ROI, ``(h, w, 3) u8``, in place), what moved outside
        the face by the photo warped at its own resolution, blended in over a band beyond the face's zone."""
        rect = self.moved_rect(warp.map_xy)
        if rect is None:
            return
        x0, y0, x1, y1 = rect
        fx0, fy0, fx1, fy1 = self.face_zone(warp.face)
        # How much of the crop to keep, per column and per row (1 in the face's zone, 0 a blend band beyond it):
        # keep_y ⊗ keep_x overall, non-zero only on the band's thin strips along the zone.
        keep_x = 1.0 - _smoothstep(_outside(np.arange(x0, x1), fx0, fx1) / self._blend_px)
        keep_y = 1.0 - _smoothstep(_outside(np.arange(y0, y1), fy0, fy1) / self._blend_px)
        where = self.map_to_roi(warp.map_xy)
        ox, oy = self._roi_in_box
        # Rows above and below the zone, then the zone's rows left and right of it.
        bands = ((y0, min(y1, fy0), x0, x1), (max(y0, fy1), y1, x0, x1),
                 (max(y0, fy0), min(y1, fy1), x0, min(x1, fx0)), (max(y0, fy0), min(y1, fy1), max(x0, fx1), x1))
        for r0, r1, c0, c1 in bands:
            if r1 <= r0 or c1 <= c0:
                continue
            body = cv2.remap(self._image, where[r0 + oy: r1 + oy, c0 + ox: c1 + ox], None, cv2.INTER_CUBIC,
                             borderMode=cv2.BORDER_REPLICATE)
            rows = np.flatnonzero(keep_y[r0 - y0: r1 - y0] > 0.0)
            cols = np.flatnonzero(keep_x[c0 - x0: c1 - x0] > 0.0)
            if len(rows) and len(cols):  # the strip along the zone: blend with the crop there
                sr, sc = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
                keep = np.outer(keep_y[r0 - y0 + sr.start: r0 - y0 + sr.stop],
                                keep_x[c0 - x0 + sc.start: c0 - x0 + sc.stop]).astype(np.float32)
                region = up[r0 + sr.start: r0 + sr.stop, c0 + sc.start: c0 + sc.stop]
                body[sr, sc] = cv2.blendLinear(body[sr, sc], region, 1.0 - keep, keep)
            up[r0:r1, c0:c1] = body


def _outside(at: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Pixels from each of ``at`` to the span ``[lo, hi)`` (0 within it)."""
    return np.maximum(np.maximum(lo - at, at - (hi - 1)), 0).astype(np.float64)


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)
