"""The mouth interior's compiled shading against its NumPy twin (installs without Numba), on the portrait's
own frames with the mouth opened: the same pixels to rounding, and the interior really painted."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.motion.retarget import Retargeter
from livepuppet.engine.render.mesh_renderer import MeshRenderer
from livepuppet.engine.render.mouth_interior import paint_mouth_interior
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.types import Expression, HeadMotion, Motion
from livepuppet.kernels import jit

pytestmark = pytest.mark.skipif(not jit.available(), reason="numba is not installed")


@pytest.mark.parametrize(("mouth_open", "jaw", "yaw"), [(0.3, 0.22, 0.0), (0.6, 0.4, 12.0), (0.15, 0.1, -20.0)])
def test_compiled_shading_equals_numpy(prepared: PreparedSource, config: EngineConfig, monkeypatch: pytest.MonkeyPatch,
                                       mouth_open: float, jaw: float, yaw: float) -> None:
    motion = Motion(0, 0, expression=Expression(mouth_open=mouth_open, jaw=jaw), head=HeadMotion(yaw=yaw))
    target = Retargeter(prepared, config.retarget).retarget(motion)
    plain = MeshRenderer(prepared, replace(config.render, mouth_interior=False)).render(target)
    scale = target.head.scale
    args = (target.landmarks, prepared.mouth, prepared.pose.scale * scale, scale)
    compiled, numpy = plain.copy(), plain.copy()
    paint_mouth_interior(compiled, *args)
    monkeypatch.setattr(jit, "numba", None)
    paint_mouth_interior(numpy, *args)
    painted = np.any(numpy != plain, axis=2)
    assert painted.sum() > 200, "the open mouth must be painted"
    diff = np.abs(compiled.astype(int) - numpy)
    assert diff.max() <= 1 and diff.mean() < 0.01, (diff.max(), diff.mean())
