"""The pipeline: one portrait animated by motions (from a driver video, a motion file or a script).

Load once, then cheap sessions: :func:`open_portrait` does the slow per-portrait work (detection, crop,
mesh); an :class:`Animator` owns the per-session state (filter, buffers). A :class:`Driver` turns driver
frames into motions. Every output carries the input's ``pts``/``seq`` and per-stage finish times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from livepuppet.engine.clock import Clock, MonotonicClock
from livepuppet.engine.config import EngineConfig, RetargetConfig
from livepuppet.engine.face.tracker import FaceTracker
from livepuppet.engine.motion.estimator import MotionEstimator
from livepuppet.engine.motion.retarget import Retargeter
from livepuppet.engine.render.compositor import Compositor
from livepuppet.engine.render.mesh_renderer import MeshRenderer
from livepuppet.engine.source import PreparedSource, prepare_source
from livepuppet.engine.types import Motion, RenderedFrame, Target, VideoFrame

if TYPE_CHECKING:
    from livepuppet.engine.neural.neural_renderer import NeuralRenderer


def open_portrait(image: np.ndarray, config: EngineConfig, face: int | None = None) -> PreparedSource:
    """The slow, once-per-portrait step (≈0.1–1 s): find the face (the largest, or the ``face``-th from the
    left) and build the mesh."""
    return prepare_source(image, config, face)


@dataclass(frozen=True, slots=True)
class AnimatedFrame:
    """One animated output: the crop, and the full portrait when compositing was asked for."""

    crop: RenderedFrame
    full: RenderedFrame | None
    target: Target


class Animator:
    """Motion → animated portrait for one session; not thread-safe; ``reset()`` between streams."""

    def __init__(self, source: PreparedSource, config: EngineConfig, clock: Clock | None = None) -> None:
        self.source = source
        self._clock = clock or MonotonicClock()
        self._retargeter = Retargeter(source, config.retarget)
        self._renderer: MeshRenderer | NeuralRenderer
        if config.render.renderer == "neural":  # torch is imported only on this path
            from livepuppet.engine.neural.neural_renderer import NeuralRenderer

            self._renderer = NeuralRenderer(source, config.render, self._clock)
        else:
            self._renderer = MeshRenderer(source, config.render)
        self._compositor = Compositor(source, config.composite)

    def reset(self) -> None:
        self._retargeter.reset()

    def reconfigure(self, retarget: RetargetConfig) -> None:
        """New gains/smoothing/limits for the next frame (live controls); restarts the motion filter."""
        self._retargeter = Retargeter(self.source, retarget)

    def animate(self, motion: Motion, full: bool = True) -> AnimatedFrame:
        """Retarget, render and (if ``full``) paste back; stamps each stage's finish time."""
        now = self._clock.now_ns
        target = self._retargeter.retarget(motion)
        t_retarget = now()
        crop = self._renderer.render(target)
        t_render = now()
        stages: tuple[tuple[str, int], ...] = (("retarget", t_retarget), ("render", t_render))
        crop_frame = RenderedFrame(pixels=crop, pts=motion.pts, seq=motion.seq, stage_ns=stages)
        full_frame = None
        if full:
            pixels = self._compositor.composite(crop, self._renderer.crop_warp())
            full_frame = RenderedFrame(pixels=pixels, pts=motion.pts, seq=motion.seq,
                                       stage_ns=(*stages, ("composite", now())))
        return AnimatedFrame(crop=crop_frame, full=full_frame, target=target)


class Driver:
    """Driver frames → :class:`Motion` (tracking mode, reference = first face or :meth:`calibrate`)."""

    def __init__(self, config: EngineConfig, keep_deltas: bool = True) -> None:
        self._tracker = FaceTracker(config.tracker, static=False)
        self._estimator = MotionEstimator(keep_deltas=keep_deltas, config=config.driver)

    def calibrate(self) -> None:
        self._estimator.calibrate()

    def reset(self) -> None:
        """Ready for a new stream: no tracking state, no neutral reference (reuse instead of rebuilding)."""
        self._tracker.reset()
        self._estimator.reset()

    def motion(self, frame: VideoFrame) -> Motion:
        return self._estimator.estimate(self._tracker.track(frame))

    def close(self) -> None:
        self._tracker.close()

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
