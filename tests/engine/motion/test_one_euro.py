from __future__ import annotations

import numpy as np
from livepuppet.engine.motion.one_euro import OneEuroFilter


def test_reduces_jitter_when_still() -> None:
    rng = np.random.default_rng(0)
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    noisy = 1.0 + 0.05 * rng.standard_normal(300)
    out = np.array([f(np.array([v]), i / 30)[0] for i, v in enumerate(noisy)])
    assert np.std(out[30:]) < 0.35 * np.std(noisy[30:])


def test_follows_fast_motion_with_little_lag() -> None:
    f = OneEuroFilter(min_cutoff=1.0, beta=0.5)
    ramp = np.linspace(0, 10, 60)
    out = np.array([f(np.array([v]), i / 30)[0] for i, v in enumerate(ramp)])
    assert abs(out[-1] - ramp[-1]) < 0.05 * (ramp[-1] - ramp[0])


def test_reset_forgets() -> None:
    f = OneEuroFilter()
    f(np.array([5.0]), 0.0)
    f.reset()
    assert f(np.array([1.0]), 1.0)[0] == 1.0
