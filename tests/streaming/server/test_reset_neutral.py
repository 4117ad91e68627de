""""Reset neutral" from the page and the API: the control a PATCH /api/sessions/{id} (and the page's button)
sends reaches the session's driver, which takes the current face as its neutral, eased in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from livepuppet.engine.clock import ManualClock
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.face.expression import FaceFeatures
from livepuppet.engine.motion.motion_filter import unfiltered
from livepuppet.engine.pipeline import Animator
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.types import Expression, Motion
from livepuppet.streaming.frame_ring import FrameRing
from livepuppet.streaming.server.controls import Controls
from livepuppet.streaming.server.driver_pool import DriverPool
from livepuppet.streaming.server.metrics import ServerMetrics
from livepuppet.streaming.server.puppet_job import PuppetJob

FPS = 25
STATIC = Path(__file__).resolve().parents[3] / "streaming" / "server" / "static"


def open_then_closed(prepared: PreparedSource, config: EngineConfig, open_frames: int, closed_frames: int
                     ) -> list[np.ndarray]:
    """Driver frames: the portrait with its mouth wide open, then at rest (the first face is the neutral)."""
    animator = Animator(prepared, replace(config, retarget=unfiltered(config.retarget)))
    wide = Expression(mouth_open=0.3, jaw=0.2)
    return [animator.animate(Motion(pts=0, seq=i, expression=wide if i < open_frames else Expression()),
                             full=False).crop.pixels.copy() for i in range(open_frames + closed_frames)]


def test_reset_neutral_control_brings_the_avatar_back_to_rest(
        prepared: PreparedSource, config: EngineConfig,
        measure_face: Callable[[np.ndarray], FaceFeatures | None]) -> None:
    frames = open_then_closed(prepared, config, 10, 40)
    reset_at = 20  # the driver's mouth is at rest from frame 10; the neutral (frame 0) was wide open
    clock = ManualClock()
    drivers = DriverPool(config, 1)
    job = PuppetJob("s", prepared, config, clock, ServerMetrics.create(), FrameRing(), drivers)
    out = FrameRing()
    job.add_output(out)
    gaps = []
    for i, pixels in enumerate(frames):
        if i == reset_at:
            job.control(Controls.parse({"reset_neutral": True}))  # what PATCH /api/sessions/{id} sends
        clock.advance(1 / FPS)
        pts = clock.now_ns()
        job.input.write(pixels, pts, i)
        job.step()
        frame = out.take(i - 1)
        assert frame is not None
        with frame:
            features = measure_face(frame.pixels)
        assert features is not None
        gaps.append(features.lip_gap)
    job.close()
    drivers.close()
    rest = measure_face(prepared.crop)
    assert rest is not None
    pressed = np.array(gaps[15:reset_at])  # the wide-open neutral makes a resting mouth look pressed shut
    assert np.all(pressed < rest.lip_gap - 0.05), (pressed.round(3), rest.lip_gap)
    after = np.array(gaps[reset_at + FPS // 2:])  # 0.5 s after the reset: back at rest
    assert np.all(np.abs(after - rest.lip_gap) < 0.02), (after.round(3), rest.lip_gap)
    eased = gaps[reset_at:reset_at + 4]
    assert all(a <= b + 0.01 for a, b in zip(eased, eased[1:], strict=False)), "eased in, not a jump"


def test_the_page_button_sends_the_same_control() -> None:
    page, script = (STATIC / "index.html").read_text(), (STATIC / "app.js").read_text()
    assert 'id="neutral"' in page
    assert '$("neutral").onclick = () => sendControls({ reset_neutral: true });' in script
    assert Controls.parse({"reset_neutral": True}).reset_neutral
