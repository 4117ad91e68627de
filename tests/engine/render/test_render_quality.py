"""Render quality on real portraits, checked by re-tracking the rendered frames with MediaPipe.

Every test that takes ``prepared`` runs once per real portrait (waist-up, head-and-shoulders, close-up,
small face: ``PORTRAIT_CASES`` in tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.face.expression import FaceFeatures
from livepuppet.engine.face.geometry import estimate_pose
from livepuppet.engine.face.topology import EYE_L_INNER, EYE_L_OUTER, EYE_R_INNER, EYE_R_OUTER
from livepuppet.engine.face.tracker import FaceTracker
from livepuppet.engine.motion.retarget import Retargeter
from livepuppet.engine.pipeline import Animator
from livepuppet.engine.render.mesh_renderer import MeshRenderer
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.types import Expression, HeadMotion, Motion, Target, VideoFrame
from skimage.metrics import structural_similarity


@pytest.fixture()
def prepared(case_prepared: PreparedSource) -> PreparedSource:
    return case_prepared


def iod_px(landmarks: np.ndarray) -> float:
    right = 0.5 * (landmarks[EYE_R_OUTER, :2] + landmarks[EYE_R_INNER, :2])
    left = 0.5 * (landmarks[EYE_L_OUTER, :2] + landmarks[EYE_L_INNER, :2])
    return float(np.linalg.norm(left - right))


def render(prepared: PreparedSource, config: EngineConfig, motion: Motion) -> tuple[np.ndarray, Target]:
    target = Retargeter(prepared, config.retarget).retarget(motion)
    return MeshRenderer(prepared, config.render).render(target), target


def retrack(tracker: FaceTracker, image: np.ndarray) -> np.ndarray:
    track = tracker.track(VideoFrame(image, 0, 0))
    assert track.found, "the rendered face must still be trackable"
    assert track.landmarks is not None
    return track.landmarks


def features(landmarks: np.ndarray) -> FaceFeatures:
    return FaceFeatures.measure(estimate_pose(landmarks).to_face(landmarks.astype(np.float64)))


def test_zero_motion_reproduces_the_portrait(prepared: PreparedSource, config: EngineConfig) -> None:
    out, _ = render(prepared, config, Motion(0, 0))
    ssim = structural_similarity(out, prepared.crop, channel_axis=2)
    assert ssim >= 0.98, ssim


MOTIONS = {
    "mouth open": Motion(0, 0, expression=Expression(mouth_open=0.22, jaw=0.16)),
    "smile": Motion(0, 0, expression=Expression(smile=0.06, mouth_width=0.06)),
    "brows": Motion(0, 0, expression=Expression(brow_raise=0.08)),
    "pucker": Motion(0, 0, expression=Expression(mouth_round=0.7)),
    "turn": Motion(0, 0, head=HeadMotion(yaw=12.0)),
    "nod and tilt": Motion(0, 0, head=HeadMotion(pitch=8.0, roll=8.0)),
}


@pytest.mark.parametrize("name", list(MOTIONS))
def test_retracking_recovers_the_target(name: str, prepared: PreparedSource, config: EngineConfig,
                                        static_tracker: FaceTracker) -> None:
    out, target = render(prepared, config, MOTIONS[name])
    found = retrack(static_tracker, out)
    error = np.linalg.norm(found[:468, :2] - target.landmarks[:468, :2], axis=1).mean() / iod_px(target.landmarks)
    assert error <= 0.05, f"{name}: mean landmark error {error:.3f} IOD"


# Known limit, kept visible: behind Grace Hopper's glasses, with hooded lids that are half shut already
# (MediaPipe reads her open eyes at ≈0.17 IOD, the astronaut's at ≈0.3), the re-tracked closed lids read
# 0.65–0.85 of open, not < 0.6. The rendered lids do meet (checked by eye); the tracker's floor is the
# limit. Strict: if it starts to pass, the mark must go.
_BLINK_XFAIL = pytest.mark.xfail(strict=True, reason="MediaPipe's closed-lid reading behind glasses on hooded eyes")


def test_blink_closes_the_eyes(prepared: PreparedSource, config: EngineConfig, static_tracker: FaceTracker,
                               portrait_case: str, request: pytest.FixtureRequest) -> None:
    if portrait_case.startswith("hopper"):
        request.applymarker(_BLINK_XFAIL)
    neutral = features(retrack(static_tracker, render(prepared, config, Motion(0, 0))[0]))
    closed_img, _ = render(prepared, config, Motion(0, 0, expression=Expression(eye_open_l=0.0, eye_open_r=0.0)))
    closed = features(retrack(static_tracker, closed_img))
    # MediaPipe puts closed lids on the lash line a little apart: real closed eyes read ≈ 0.4–0.6.
    assert closed.eye_gap_l < 0.6 * neutral.eye_gap_l, (closed.eye_gap_l, neutral.eye_gap_l)
    assert closed.eye_gap_r < 0.6 * neutral.eye_gap_r, (closed.eye_gap_r, neutral.eye_gap_r)
    half_img, _ = render(prepared, config, Motion(0, 0, expression=Expression(eye_open_l=0.5, eye_open_r=0.5)))
    half = features(retrack(static_tracker, half_img))
    assert closed.eye_gap_l < half.eye_gap_l < neutral.eye_gap_l


def test_mouth_open_opens_the_mouth(prepared: PreparedSource, config: EngineConfig,
                                    static_tracker: FaceTracker) -> None:
    neutral = features(retrack(static_tracker, render(prepared, config, Motion(0, 0))[0]))
    img, _ = render(prepared, config, Motion(0, 0, expression=Expression(mouth_open=0.3, jaw=0.22)))
    opened = features(retrack(static_tracker, img))
    assert opened.lip_gap - neutral.lip_gap > 0.18, (opened.lip_gap, neutral.lip_gap)
    assert opened.chin_y - neutral.chin_y > 0.12


def test_mouth_interior_is_dark_with_teeth(prepared: PreparedSource, config: EngineConfig) -> None:
    img, target = render(prepared, config, Motion(0, 0, expression=Expression(mouth_open=0.3, jaw=0.22)))
    from livepuppet.engine.face.topology import LIP_INNER_LOWER, LIP_INNER_UPPER

    top = target.landmarks[LIP_INNER_UPPER[5], :2]
    bottom = target.landmarks[LIP_INNER_LOWER[5], :2]
    column = img[int(top[1]) + 2: int(bottom[1]) - 1, int(round(0.5 * (top[0] + bottom[0])))].astype(float)
    luma = column @ np.array([0.299, 0.587, 0.114])
    assert luma.min() < 60, "the cavity must be dark"
    assert luma[: max(2, len(luma) // 5)].max() > 150, "upper teeth must show under the upper lip"


def test_paste_back_has_no_seam(prepared: PreparedSource, config: EngineConfig) -> None:
    animator = Animator(prepared, config)
    out = animator.animate(Motion(0, 0, expression=Expression(mouth_open=0.2, jaw=0.15, smile=0.05),
                                  head=HeadMotion(yaw=8.0)))
    full = out.full.pixels.astype(np.float32) if out.full else None
    assert full is not None
    source = prepared.image.astype(np.float32)
    box = prepared.box
    # Gradient energy on a thin band along the crop's border (where the feathered mask fades out), on the
    # sides of the border that lie inside the image.
    x0, y0, x1, y1 = box.x0, box.y0, box.x0 + box.side, box.y0 + box.side
    h, w = source.shape[:2]
    band = np.zeros((h, w), bool)
    for inset in (2, 6, 12):
        rows, cols = slice(max(y0 + inset, 0), min(y1 - inset, h)), slice(max(x0 + inset, 0), min(x1 - inset, w))
        if x0 + inset >= 0:
            band[rows, x0 + inset] = True
        if x1 - inset < w:
            band[rows, x1 - inset] = True
        if y0 + inset >= 0:
            band[y0 + inset, cols] = True
        if y1 - inset < h:
            band[y1 - inset, cols] = True
    if not band.any():  # a close-up: the crop box covers the whole image, so no border can show
        assert x0 + 12 < 0 and y0 + 12 < 0 and x1 - 12 >= w and y1 - 12 >= h
        return

    def energy(img: np.ndarray) -> float:
        gy, gx = np.gradient(img.mean(axis=2))
        return float(np.mean(gx[band] ** 2 + gy[band] ** 2))

    assert abs(energy(full) - energy(source)) <= 0.10 * energy(source)
    # Outside the crop box the portrait is untouched.
    mask = np.ones(source.shape[:2], bool)
    mask[max(box.y0, 0):box.y0 + box.side, max(box.x0, 0):box.x0 + box.side] = False
    assert np.array_equal(full[mask], source[mask])


@pytest.mark.parametrize("size", [256, 512])
def test_crop_size_is_configurable(portrait: np.ndarray, size: int) -> None:
    from livepuppet.engine.config import load_config
    from livepuppet.engine.pipeline import open_portrait

    cfg = load_config("cpu-realtime", [f"render.crop_size={size}"])
    source = open_portrait(portrait, cfg)
    out = Animator(source, cfg).animate(Motion(0, 0, expression=Expression(mouth_open=0.2)), full=False)
    assert out.crop.pixels.shape == (size, size, 3)
