"""The compiled painter's order against its NumPy twin: the same order on the real portrait's frames (blinks,
turns, a wide-open mouth) and on meshes made of ties and collapsed triangles."""

from __future__ import annotations

import numpy as np
import pytest
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.motion.retarget import Retargeter
from livepuppet.engine.motion.scripted_motion import scripted_motion
from livepuppet.engine.render.mesh_renderer import MeshRenderer
from livepuppet.engine.source import PreparedSource
from livepuppet.kernels import jit
from livepuppet.kernels.draw_order import draw_order

pytestmark = pytest.mark.skipif(not jit.available(), reason="numba is not installed")


def numpy_renderer(prepared: PreparedSource, monkeypatch: pytest.MonkeyPatch) -> MeshRenderer:
    """A renderer built as on an install without Numba: its order comes from the NumPy twin."""
    with monkeypatch.context() as patch:
        patch.setattr(jit, "numba", None)
        renderer = MeshRenderer(prepared, EngineConfig().render)
    return renderer


def test_portrait_frames_are_drawn_in_the_same_order(prepared: PreparedSource,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    config = EngineConfig()
    compiled = MeshRenderer(prepared, config.render)
    twin = numpy_renderer(prepared, monkeypatch)
    retargeter = Retargeter(prepared, config.retarget)
    for i in range(0, 75, 3):  # talking, two blinks (lids collapse), head turns (cheeks fold)
        target = retargeter.retarget(scripted_motion(i / 25.0, i))
        dst = compiled.target_points(target).copy()
        want = twin.draw_order(target, dst)
        assert np.array_equal(compiled.draw_order(target, dst), want), f"frame {i}"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ties_folds_and_collapses_keep_the_stable_order(seed: int) -> None:
    """Many equal depths (the ring's are all infinite), back-facing and collapsed face triangles: the order
    is ``np.lexsort((-depth, rank))``, ties in index order."""
    rng = np.random.default_rng(seed)
    points, count = 60, 400
    dst = rng.uniform(0, 100, (points, 2)).astype(np.float32)
    dst[10] = dst[11]  # collapsed triangles wherever both appear
    tris = rng.integers(0, points, (count, 3)).astype(np.int32)
    depth = np.where(np.arange(points) < 40, rng.integers(-3, 3, points).astype(np.float64), np.inf)
    orientation = rng.choice([-1.0, 1.0], count)
    is_face = np.all(tris < 40, axis=1)
    p = dst[tris].astype(np.float64)
    area = ((p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1])
            - (p[:, 2, 0] - p[:, 0, 0]) * (p[:, 1, 1] - p[:, 0, 1])) * orientation
    folded = is_face & ((area <= 0) | (np.abs(area) < 2.0))
    rank = np.where(folded, 0, np.where(is_face, 2, 1))
    want = np.lexsort((-depth[tris].max(axis=1), rank))
    assert len(set(rank.tolist())) == 3 and np.isinf(depth[tris].max(axis=1)).sum() > 50  # all cases present
    assert np.array_equal(draw_order(dst, tris, depth, orientation, is_face), want)
