"""``animate --reset-neutral-at``: the CLI's "reset neutral", the same driver call as the page and the API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
from livepuppet.cli.main import main
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.face.expression import FaceFeatures
from livepuppet.engine.motion.motion_filter import unfiltered
from livepuppet.engine.pipeline import Animator
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.types import Expression, Motion
from PIL import Image

FPS = 25


def open_then_closed_video(path: Path, prepared: PreparedSource, config: EngineConfig) -> Path:
    """0.4 s with the mouth wide open (so that is the neutral learned), then 1.6 s at rest."""
    animator = Animator(prepared, replace(config, retarget=unfiltered(config.retarget)))
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width = stream.height = 512
        stream.pix_fmt = "yuv420p"
        for i in range(2 * FPS):
            e = Expression(mouth_open=0.3, jaw=0.2) if i < 10 else Expression()
            crop = animator.animate(Motion(pts=0, seq=i, expression=e), full=False).crop.pixels
            for packet in stream.encode(av.VideoFrame.from_ndarray(crop, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def test_reset_neutral_at_brings_the_mouth_back_to_rest(
        tmp_path: Path, portrait: np.ndarray, prepared: PreparedSource, config: EngineConfig,
        measure_face: Callable[[np.ndarray], FaceFeatures | None]) -> None:
    source = tmp_path / "portrait.png"
    Image.fromarray(portrait).save(source)
    driving = open_then_closed_video(tmp_path / "driver.mp4", prepared, config)
    gaps = {}
    for name, extra in (("plain", []), ("reset", ["--reset-neutral-at", "0.8"])):
        out = tmp_path / f"{name}.mp4"
        assert main(["animate", "--source", str(source), "--driving", str(driving), "-o", str(out), "--crop",
                     "-q", "--no-audio", *extra]) == 0
        with av.open(str(out)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        gaps[name] = np.array([measure_face(f).lip_gap for f in frames])  # type: ignore[union-attr]
    rest = measure_face(prepared.crop)
    assert rest is not None
    late = slice(int(1.3 * FPS), None)  # 0.5 s after the reset
    assert np.all(gaps["plain"][late] < rest.lip_gap - 0.05), "without a reset the open-mouth neutral stays"
    assert np.all(np.abs(gaps["reset"][late] - rest.lip_gap) < 0.02), gaps["reset"][late].round(3)


def test_reset_neutral_at_needs_a_driving_video(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    motion = tmp_path / "m.json"
    motion.write_text("{}")
    assert main(["animate", "--source", "x.png", "--motion", str(motion), "-o", str(tmp_path / "o.mp4"),
                 "--reset-neutral-at", "1"]) == 3
    assert "--reset-neutral-at needs --driving" in capsys.readouterr().err
