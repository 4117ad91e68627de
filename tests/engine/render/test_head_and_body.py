"""Head and body together: a driver leaning in grows the head only so far and the neck follows without a
seam at the collar; a turned head keeps a smooth silhouette. Runs on every real test portrait."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.face import topology as ft
from livepuppet.engine.motion.retarget import Retargeter
from livepuppet.engine.pipeline import Animator
from livepuppet.engine.render.mesh_renderer import MeshRenderer
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.types import HeadMotion, Motion
from scipy.signal import savgol_filter

# A driver leaning towards the camera: its face grows by a third (and drops or slides a little, as a
# torso tilting forward does); the portrait's body cannot follow, so the head must not either, beyond a bound.
LEAN_IN = (HeadMotion(scale=1.33), HeadMotion(scale=1.33, ty=0.1), HeadMotion(scale=1.2, tx=0.25))


def _iod(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(landmarks[ft.IRIS_L_CENTER, :2] - landmarks[ft.IRIS_R_CENTER, :2]))


def test_leaning_in_grows_the_head_softly_and_boundedly(case_prepared: PreparedSource,
                                                        config: EngineConfig) -> None:
    source_iod = _iod(case_prepared.landmarks)
    grown = []
    for scale in (1.02, 1.1, 1.33, 2.0):
        target = Retargeter(case_prepared, config.retarget).retarget(Motion(0, 0, head=HeadMotion(scale=scale)))
        grown.append(_iod(target.landmarks) / source_iod)
    limit = 1.0 + config.retarget.max_head_scale
    assert abs(grown[0] - 1.02) < 0.002, "a small lean passes almost unchanged"
    assert all(a < b for a, b in zip(grown, grown[1:], strict=False)), "no hard stop: it keeps growing, slower"
    assert grown[-1] < limit + 1e-6, (grown, limit)
    # The head grows about the neck: the chin stays over the collar.
    target = Retargeter(case_prepared, config.retarget).retarget(Motion(0, 0, head=HeadMotion(scale=2.0)))
    chin_moved = np.linalg.norm(target.landmarks[ft.CHIN, :2] - case_prepared.landmarks[ft.CHIN, :2])
    assert chin_moved < 0.03 * case_prepared.pose.scale, chin_moved


def _neck_band(source: PreparedSource) -> tuple[slice, slice]:
    """Full-image rows from just below the chin to past the crop's bottom edge, columns a neck's width
    around the chin: where a collar seam would show (the leans below drop the chin by less than the gap)."""
    box = source.box
    k = box.side / source.crop_size
    chin = source.landmarks[ft.CHIN, :2] * k + np.array([box.x0, box.y0])
    iod = source.pose.scale * k
    h, w = source.image.shape[:2]
    y0 = int(chin[1] + 0.15 * iod)
    y1 = int(min(h, box.y0 + box.side + 0.5 * iod))
    x0, x1 = int(max(0, chin[0] - 0.6 * iod)), int(min(w, chin[0] + 0.6 * iod))
    assert y1 - y0 >= 4, "the neck must be in the picture"
    return slice(y0, y1), slice(x0, x1)


def _neck_energy_ratio(source: PreparedSource, config: EngineConfig, lean: HeadMotion) -> float:
    """Gradient energy along the neck in the animated full frame over the same in the portrait."""
    band = _neck_band(source)
    full = Animator(source, config).animate(Motion(0, 0, head=lean)).full
    assert full is not None
    gy, gx = np.gradient(full.pixels.astype(np.float32).mean(axis=2))
    sy, sx = np.gradient(source.image.astype(np.float32).mean(axis=2))
    return float(np.mean((gx * gx + gy * gy)[band]) / np.mean((sx * sx + sy * sy)[band]))


# Within 10% of the source's: a crease, a squeezed neck or a step at the crop's edge all add or remove
# gradient energy there. The old renderer measured 0.38–1.17 growing (four portraits), 0.86 and 1.37 moving.
def test_leaning_in_leaves_no_seam_at_the_collar(case_prepared: PreparedSource, config: EngineConfig) -> None:
    ratio = _neck_energy_ratio(case_prepared, config, LEAN_IN[0])
    assert abs(ratio - 1.0) <= 0.10, f"neck gradient energy {ratio:.3f} of the source's"


@pytest.mark.parametrize("lean", LEAN_IN[1:], ids=["grow and drop", "grow and slide"])
def test_leaning_and_moving_leaves_no_seam_at_the_collar(case_prepared: PreparedSource, config: EngineConfig,
                                                         lean: HeadMotion) -> None:
    """Every portrait. The collar and tie that follow the head stay as sharp as the photo: pasting the crop
    back used to blur them (0.84–0.85 on Hopper, 0.48–0.64 on the close-up, whose crop box then ran past the
    photo's edges)."""
    ratio = _neck_energy_ratio(case_prepared, config, lean)
    assert abs(ratio - 1.0) <= 0.10, f"neck gradient energy {ratio:.3f} of the source's"


def _silhouette_steps(source: PreparedSource, config: EngineConfig, head: HeadMotion) -> float:
    """Render a label image (the face, just inside its outline, white) through the warp and measure how far
    the rendered outline's left and right edges stray from a smooth curve, row by row (crop pixels)."""
    oval = source.landmarks[list(ft.FACE_OVAL), :2]
    center = oval.mean(axis=0)
    label = np.zeros_like(source.crop)
    cv2.fillPoly(label, [np.round(center + 0.9 * (oval - center)).astype(np.int32)], (255, 255, 255))
    labelled = replace(source, crop=label)
    target = Retargeter(labelled, config.retarget).retarget(Motion(0, 0, head=head))
    render = replace(config.render, mouth_interior=False, map_scale=1.0)
    mask = MeshRenderer(labelled, render).render(target)[..., 0] > 127
    rows = np.flatnonzero(mask.any(axis=1))
    rows = rows[len(rows) // 10: len(rows) * 9 // 10]  # the sides, not the flat top and the chin
    worst = 0.0
    for pick in (0, -1):
        x = np.array([np.flatnonzero(mask[r])[pick] for r in rows], dtype=np.float64)
        worst = max(worst, float(np.abs(x - savgol_filter(x, 15, 2)).max()))
    return worst


# Measured on the four portraits at yaw ±15° and ±25° (crop 512 px): the still outline (rasterized on the
# pixel grid) strays 0.5–0.9 px from a smooth curve; the turned one now 1.0–1.45 px; the old renderer's
# visible sawtooth on the far cheek measured 1.7–3.7 px at ±25°. A step under 1.6 px (0.3% of the crop) is
# the rasterization's own scale and does not show; every old ±25° render fails this bound.
MAX_STEP_PX = 1.6


@pytest.mark.parametrize("yaw", [-25.0, 25.0])
def test_turned_head_has_a_smooth_silhouette(case_prepared: PreparedSource, config: EngineConfig,
                                             yaw: float) -> None:
    still = _silhouette_steps(case_prepared, config, HeadMotion())
    turned = _silhouette_steps(case_prepared, config, HeadMotion(yaw=yaw))
    assert still < 1.0, still
    assert turned < MAX_STEP_PX, f"silhouette steps {turned:.2f} px at yaw {yaw}"
