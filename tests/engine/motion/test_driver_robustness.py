"""The driver on real footage: a cut to another person, frames that are not faces, a still face's jitter.

Driver videos are real photos (the astronaut bundled with scikit-image, Grace Hopper shipped with
matplotlib) re-encoded with camera-like noise and H.264; the avatar is re-tracked to see what it does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from livepuppet.engine.config import DriverConfig, EngineConfig
from livepuppet.engine.face.expression import FaceFeatures
from livepuppet.engine.media.video_io import read_video
from livepuppet.engine.motion.motion_filter import unfiltered
from livepuppet.engine.motion.scripted_motion import scripted_motion
from livepuppet.engine.pipeline import Animator, Driver, open_portrait
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.types import VideoFrame
from skimage import transform

FPS = 25
NO_CUT_DETECTION = DriverConfig(max_scale_jump=10.0, max_shift_jump=100.0, max_look_jump=0.0)


def drive(video: Path, prepared: PreparedSource, config: EngineConfig,
          measure: Callable[[np.ndarray], FaceFeatures | None]) -> tuple[list[float], int]:
    """Avatar lip gap (re-tracked) per driver frame, and how often the driver learned its neutral again."""
    animator = Animator(prepared, config)
    gaps = []
    with Driver(config) as driver:
        for frame in read_video(video):
            crop = animator.animate(driver.motion(frame), full=False).crop.pixels
            features = measure(crop)
            assert features is not None, "the avatar must stay a trackable face"
            gaps.append(features.lip_gap)
        return gaps, driver._estimator.neutral_changes


def test_cut_to_another_person_brings_the_mouth_back_to_rest_within_half_a_second(
        tmp_path: Path, portrait: np.ndarray, grace_hopper: np.ndarray, prepared: PreparedSource,
        config: EngineConfig, measure_face: Callable[[np.ndarray], FaceFeatures | None],
        camera_like_video: Callable[..., Path]) -> None:
    cut = FPS  # one second of the astronaut at rest, then Grace Hopper at rest
    video = camera_like_video(tmp_path / "cut.mp4", [portrait] * cut + [grace_hopper] * FPS, fps=FPS)
    gaps, relearned = drive(video, prepared, config, measure_face)
    rest = float(np.median(gaps[5:cut]))
    after = np.array(gaps[cut + FPS // 2:])  # from 0.5 s after the cut
    assert relearned == 1
    assert np.max(np.abs(after - rest)) < 0.02, f"rest {rest:.3f}, after the cut {after.round(3)}"
    # The same video with cut detection off: the first person's neutral stays and the mouth is pressed shut.
    stale, _ = drive(video, prepared, replace(config, driver=NO_CUT_DETECTION), measure_face)
    assert np.median(np.abs(np.array(stale[cut + FPS // 2:]) - rest)) > 0.05


def test_a_cut_between_two_people_framed_alike_is_seen_by_their_look(
        tmp_path: Path, grace_hopper: np.ndarray, prepared: PreparedSource, config: EngineConfig,
        measure_face: Callable[[np.ndarray], FaceFeatures | None], camera_like_video: Callable[..., Path]) -> None:
    """Both portraits' face crops (the same size and place: only the person changes, so no jump in scale or
    position): the change of skin and background colour is the cut, and the mouth is back at rest in 0.5 s."""
    hopper = open_portrait(grace_hopper, config).crop
    assert hopper.shape == prepared.crop.shape
    cut = FPS
    video = camera_like_video(tmp_path / "cut.mp4", [prepared.crop] * cut + [hopper] * FPS, fps=FPS)
    gaps, relearned = drive(video, prepared, config, measure_face)
    rest = float(np.median(gaps[5:cut]))
    after = np.array(gaps[cut + FPS // 2:])
    assert relearned == 1
    assert np.max(np.abs(after - rest)) < 0.02, f"rest {rest:.3f}, after the cut {after.round(3)}"
    # Without the look the shape cues do not see this cut: the first person's neutral stays.
    _, blind = drive(video, prepared, replace(config, driver=replace(config.driver, max_look_jump=0.0)),
                     measure_face)
    assert blind == 0


def _not_faces(portrait: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    broken = portrait.copy()
    for y in range(0, 512, 16):  # rows shifted and the lower half smeared, like a broken decoder
        broken[y:y + 16] = np.roll(broken[y:y + 16], int(rng.integers(-80, 80)), axis=1)
    broken[256:] = broken[256:257]
    smiley = np.full((512, 512, 3), 200, np.uint8)
    cv2.circle(smiley, (256, 256), 150, (230, 190, 150), -1)
    for x in (200, 312):
        cv2.circle(smiley, (x, 210), 18, (30, 30, 30), -1)
    cv2.ellipse(smiley, (256, 300), (70, 40), 0, 0, 180, (120, 40, 40), 8)
    cv2.line(smiley, (256, 230), (256, 280), (150, 100, 80), 6)
    swirl = (transform.swirl(portrait, center=(256, 200), strength=6, radius=200) * 255).astype(np.uint8)
    return {
        "noise": rng.integers(0, 256, (512, 512, 3), dtype=np.uint8),
        "blocks": cv2.resize(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), (512, 512),
                             interpolation=cv2.INTER_NEAREST),
        "broken": broken,
        "swirl": swirl,
        "upside-down": np.ascontiguousarray(portrait[::-1]),
        "drawn smiley": smiley,
    }


def _avatar_targets(frames: list[np.ndarray], prepared: PreparedSource, config: EngineConfig
                    ) -> list[tuple[bool, np.ndarray]]:
    animator = Animator(prepared, config)
    out = []
    with Driver(config) as driver:
        for i, pixels in enumerate(frames):
            motion = driver.motion(VideoFrame(np.ascontiguousarray(pixels), int(i * 1e9 / FPS), i))
            out.append((motion.face_found, animator.animate(motion, full=False).target.landmarks))
    return out


@pytest.mark.parametrize("kind", ["noise", "blocks", "broken", "swirl", "upside-down", "drawn smiley"])
def test_frames_that_are_not_faces_never_drive_the_avatar(kind: str, portrait: np.ndarray,
                                                          prepared: PreparedSource, config: EngineConfig) -> None:
    """A real face, then 1.6 s of garbage: the avatar does exactly what it does when the face leaves the
    picture (black frames): hold, then ease to neutral within lost_hold_s + lost_ease_s (1.2 s)."""
    real = [portrait] * 10  # a real face first, so the tracker is in tracking mode
    garbage = _avatar_targets(real + [_not_faces(portrait)[kind]] * 40, prepared, config)
    empty = _avatar_targets(real + [np.zeros_like(portrait)] * 40, prepared, config)
    neutral = prepared.landmarks[:, :2]
    for (found, landmarks), (_, reference) in zip(garbage[10:], empty[10:], strict=True):
        assert not found, f"{kind}: a non-face was taken for a face"
        moved = float(np.abs(landmarks[:, :2] - reference[:, :2]).max())
        assert moved < 0.05, f"{kind}: the avatar moved {moved:.2f} px with a non-face"
    assert np.abs(garbage[-1][1][:, :2] - neutral).max() < 0.5


def test_rejected_shapes_are_face_like_but_real_faces_pass(portrait: np.ndarray, grace_hopper: np.ndarray,
                                                           config: EngineConfig) -> None:
    """The gate must not refuse real faces (the swirl and the smiley are found by the tracker, then refused)."""
    for pixels in (portrait, grace_hopper):
        with Driver(config) as driver:
            assert driver.motion(VideoFrame(pixels, 0, 0)).face_found
    rejected = 0
    for kind in ("swirl", "drawn smiley", "upside-down"):
        with Driver(config) as driver:
            assert not driver.motion(VideoFrame(_not_faces(portrait)[kind], 0, 0)).face_found
            rejected += driver._estimator.rejected
    assert rejected == 3, "the tracker found these, and the plausibility gate refused them"


def test_still_face_jitter_is_at_most_0_3_px(tmp_path: Path, portrait: np.ndarray, prepared: PreparedSource,
                                             config: EngineConfig, camera_like_video: Callable[..., Path]) -> None:
    """A still photo with sensor noise and compression: the avatar's landmarks (crop pixels) hold still."""
    video = camera_like_video(tmp_path / "still.mp4", [portrait] * 75, fps=30)
    animator = Animator(prepared, config)
    raw = Animator(prepared, replace(config, retarget=unfiltered(config.retarget)))
    smooth, raw_points = [], []
    with Driver(config) as driver:
        for frame in read_video(video):
            motion = driver.motion(frame)
            smooth.append(animator.animate(motion, full=False).target.landmarks)
            raw_points.append(raw.animate(motion, full=False).target.landmarks)

    def jitter(series: list[np.ndarray]) -> float:
        points = np.array(series)[10:, :, :2]
        return float(np.sqrt(points.var(axis=0).sum(axis=-1)).mean())

    assert jitter(smooth) <= 0.3, f"{jitter(smooth):.3f} px"
    assert jitter(raw_points) > 1.5 * jitter(smooth), "the tracker alone jitters; the filter is what holds still"


def test_a_talking_turning_face_is_not_taken_for_a_cut(tmp_path: Path, prepared: PreparedSource,
                                                       config: EngineConfig,
                                                       camera_like_video: Callable[..., Path]) -> None:
    """The scripted performance (syllables, blinks, ±14° head turns) through noise and H.264: no new neutral."""
    renderer = Animator(prepared, replace(config, retarget=unfiltered(config.retarget)))
    frames = [renderer.animate(scripted_motion(1.0 + i / FPS), full=False).crop.pixels.copy()
              for i in range(5 * FPS)]
    video = camera_like_video(tmp_path / "talking.mp4", frames, fps=FPS)
    with Driver(config) as driver:
        found = [driver.motion(frame).face_found for frame in read_video(video)]
        assert all(found)
        assert driver._estimator.neutral_changes == 0 and driver._estimator.rejected == 0


def test_a_face_gone_for_a_while_is_learned_again(portrait: np.ndarray, grace_hopper: np.ndarray,
                                                  config: EngineConfig) -> None:
    """Someone leaves and someone of the same size sits down a few seconds later: a new neutral."""
    with Driver(config) as driver:
        frames = [portrait] * 5 + [np.zeros_like(portrait)] * 40 + [portrait] * 5
        for i, pixels in enumerate(frames):
            driver.motion(VideoFrame(pixels, int(i * 1e9 / FPS), i))
        assert driver._estimator.neutral_changes == 1
