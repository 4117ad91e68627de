"""RGB ↔ I420/NV12 on the CPU: known answers, round trips, and agreement with PyAV (libswscale)."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
from livepuppet.kernels.color_convert import i420_to_rgb, nv12_to_rgb, rgb_to_i420, rgb_to_nv12
from skimage import data

SWS_JPEG_RANGE = 2  # libswscale / PyAV color range: 1 = MPEG (limited), 2 = JPEG (full)


@pytest.fixture(scope="module")
def smooth() -> np.ndarray:
    """A real portrait, lightly blurred: chroma subsampling filters differ only at sharp colour edges."""
    return cv2.GaussianBlur(data.astronaut(), (0, 0), 2.0)


@pytest.mark.parametrize(("rgb", "limited", "full"), [
    ((0, 0, 0), (16, 128, 128), (0, 128, 128)),
    ((255, 255, 255), (235, 128, 128), (255, 128, 128)),
    ((255, 0, 0), (82, 90, 240), (76, 85, 255)),
])
def test_known_colours(rgb: tuple[int, int, int], limited: tuple[int, ...], full: tuple[int, ...]) -> None:
    img = np.tile(np.array(rgb, np.uint8), (4, 6, 1))
    for full_range, want in ((False, limited), (True, full)):
        yuv = rgb_to_i420(img, full_range)
        assert yuv.shape == (6, 6)
        y, u, v = yuv[:4].ravel(), yuv[4:5].ravel()[:6], yuv[5:].ravel()[:6]
        assert np.all(np.abs(y.astype(int) - want[0]) <= 1) and np.all(np.abs(u.astype(int) - want[1]) <= 1)
        assert np.all(np.abs(v.astype(int) - want[2]) <= 1)
        assert np.all(np.abs(i420_to_rgb(yuv, full_range).astype(int) - np.array(rgb)) <= 2)


@pytest.mark.parametrize("full_range", [False, True])
def test_round_trip_and_nv12_layout(smooth: np.ndarray, full_range: bool) -> None:
    i420 = rgb_to_i420(smooth, full_range)
    nv12 = rgb_to_nv12(smooth, full_range)
    h, w = smooth.shape[:2]
    q = h * w // 4
    assert np.array_equal(nv12[:h], i420[:h])
    assert np.array_equal(nv12[h:].reshape(-1, 2)[:, 0], i420.ravel()[h * w:h * w + q])
    assert np.array_equal(nv12[h:].reshape(-1, 2)[:, 1], i420.ravel()[h * w + q:])
    back = i420_to_rgb(i420, full_range)
    assert np.array_equal(back, nv12_to_rgb(nv12, full_range))
    err = np.abs(back.astype(int) - smooth)
    assert err.mean() < 1.0 and np.percentile(err, 99) <= 6  # chroma at half resolution: edges lose most
    # YUV → RGB → YUV is stable on the luma plane (within rounding)
    again = rgb_to_i420(back, full_range)
    assert np.abs(again[:h].astype(int) - i420[:h]).max() <= 2


@pytest.mark.parametrize("full_range", [False, True])
def test_agrees_with_pyav(smooth: np.ndarray, full_range: bool) -> None:
    h = smooth.shape[0]
    frame = av.VideoFrame.from_ndarray(smooth, format="rgb24")
    kw = {"dst_color_range": SWS_JPEG_RANGE} if full_range else {}
    ref_i420 = frame.reformat(format="yuv420p", **kw).to_ndarray()
    ref_nv12 = frame.reformat(format="nv12", **kw).to_ndarray()
    for ours, ref in ((rgb_to_i420(smooth, full_range), ref_i420), (rgb_to_nv12(smooth, full_range), ref_nv12)):
        d = np.abs(ours.astype(int) - ref)
        assert d[:h].max() <= 1, "luma within rounding"
        assert d[h:].max() <= 2 and d[h:].mean() < 1.0, "chroma: swscale's 2x2 filter differs slightly"
    back = av.VideoFrame.from_ndarray(ref_i420, format="yuv420p")
    ref_rgb = back.reformat(format="rgb24", **({"src_color_range": SWS_JPEG_RANGE} if full_range else {})).to_ndarray()
    d = np.abs(i420_to_rgb(ref_i420, full_range).astype(int) - ref_rgb)
    assert d.max() <= 3 and d.mean() < 1.2


def test_bad_sizes_are_rejected_clearly() -> None:
    with pytest.raises(ValueError, match="even"):
        rgb_to_i420(np.zeros((5, 6, 3), np.uint8))
    with pytest.raises(ValueError, match="even"):
        rgb_to_nv12(np.zeros((6, 7, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        rgb_to_i420(np.zeros((6, 6, 3), np.float32))
    with pytest.raises(ValueError, match="rows"):
        i420_to_rgb(np.zeros((7, 6), np.uint8))
    with pytest.raises(ValueError, match="even W"):
        nv12_to_rgb(np.zeros((6, 5), np.uint8))
