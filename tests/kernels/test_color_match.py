"""Feathered paste-back with colour matching (CPU): statistics move toward the frame's; off = unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from livepuppet.kernels.blend import feather_blend, feather_mask, masked_color_stats


def face_and_frame() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    base = rng.normal(120, 25, (96, 96, 3))
    frame = np.clip(base, 0, 255).astype(np.uint8)
    # the "rendered face": same content, colour cast (too red, too dark) and flatter contrast
    face = np.clip((base - 120) * 0.6 + np.array([150.0, 100.0, 90.0]), 0, 255).astype(np.uint8)
    return frame, face, feather_mask(96, 0.2)


def test_zero_strength_is_the_plain_blend() -> None:
    frame, face, mask = face_and_frame()
    assert np.array_equal(feather_blend(frame, face, mask, color_match=0.0), feather_blend(frame, face, mask))


@pytest.mark.parametrize("strength", [0.5, 1.0])
def test_matched_face_statistics_move_toward_the_frame(strength: float) -> None:
    frame, face, mask = face_and_frame()
    ones = np.ones_like(mask)  # paste the face everywhere: the output shows the matched face itself
    matched = feather_blend(frame, face, ones, color_match=strength)
    (m_frame, c_frame), (m_face, c_face) = masked_color_stats(frame, ones), masked_color_stats(face, ones)
    m_out, c_out = masked_color_stats(matched, ones)
    before = np.abs(m_face - m_frame)
    after = np.abs(m_out - m_frame)
    assert np.all(after <= (1.0 - strength) * before + 1.5)
    std_frame, std_face, std_out = (np.sqrt(np.diag(c)) for c in (c_frame, c_face, c_out))
    assert np.all(np.abs(std_out - std_frame) < np.abs(std_face - std_frame))
    if strength == 1.0:
        assert np.all(after < 1.5) and np.all(np.abs(std_out - std_frame) < 0.1 * std_frame)


def test_strength_is_validated() -> None:
    frame, face, mask = face_and_frame()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        feather_blend(frame, face, mask, color_match=1.5)
