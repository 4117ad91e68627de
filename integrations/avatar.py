"""What every framework adapter loads once before its first frame: the portrait prepared for animation,
the engine config and the audio→mouth model; and the talk stream one avatar session runs on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import numpy as np
from livepuppet.engine.clock import Clock
from livepuppet.engine.config import EMOTIONS, EngineConfig, load_config
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.speech.generator import TalkingHeadGenerator
from livepuppet.engine.speech.mouth_model import AudioMouthModel
from livepuppet.errors import InputError
from livepuppet.streaming.talk_stream import Pacer, TalkStream

Portrait: TypeAlias = str | Path | np.ndarray | PreparedSource | None


@dataclass(frozen=True, slots=True)
class AvatarAssets:
    """Loaded once per portrait (slow: face tracking, mesh, model); any number of sessions share it."""

    source: PreparedSource
    config: EngineConfig
    model: AudioMouthModel


def load_avatar(portrait: Portrait = None, config: EngineConfig | None = None,
                model: AudioMouthModel | None = None) -> AvatarAssets:
    """Blocking (0.1–1 s): ``portrait`` is an image path, an ``(H, W, 3) u8 RGB`` array, an already prepared
    source, or None for the bundled astronaut photo; ``config`` defaults to the ``cpu-realtime`` preset."""
    from livepuppet.engine.media.video_io import load_image
    from livepuppet.engine.pipeline import open_portrait

    config = config or load_config()
    if isinstance(portrait, PreparedSource):
        source = portrait
    else:
        if portrait is None:
            from skimage import data

            image = data.astronaut()
        elif isinstance(portrait, np.ndarray):
            if portrait.ndim != 3 or portrait.shape[2] != 3 or portrait.dtype != np.uint8:
                raise InputError(f"portrait array must be (H, W, 3) uint8 RGB, not {portrait.dtype} {portrait.shape}")
            image = portrait
        else:
            image = load_image(portrait)
        source = open_portrait(image, config)
    return AvatarAssets(source=source, config=config,
                        model=model or AudioMouthModel.load(config.speech.model or None))


def check_emotion(name: str, intensity: float) -> tuple[str, float]:
    """A valid (emotion, intensity) or a clear :class:`InputError` (the generator's own rule, checked early)."""
    if name not in EMOTIONS:
        raise InputError(f"emotion must be one of {', '.join(EMOTIONS)}, not {name!r}")
    if isinstance(intensity, bool) or not isinstance(intensity, int | float) or not 0.0 <= intensity <= 1.0:
        raise InputError(f"emotion intensity must be a number in [0, 1], not {intensity!r}")
    return name, float(intensity)


def open_talk_stream(assets: AvatarAssets, *, fps: float, audio_rate: int, pacer: Pacer | None = None,
                     clock: Clock | None = None, emotion: tuple[str, float] | None = None) -> TalkStream:
    """A real-time talk stream (one frame per 1/fps, idle life between utterances) for one session."""
    generator = TalkingHeadGenerator(assets.source, assets.config, assets.model, fps=fps, audio_rate=audio_rate,
                                     clock=clock)
    if emotion is not None:
        generator.set_emotion(*emotion)
    return TalkStream(generator, realtime=True, pacer=pacer)
