"""Live controls: strict parsing at the edge, and what they change in the retarget config."""

from __future__ import annotations

import pytest
from livepuppet.engine.config import RetargetConfig
from livepuppet.errors import InputError
from livepuppet.streaming.server.controls import Controls


def test_controls_apply_to_the_retarget_config() -> None:
    base = RetargetConfig()
    c = Controls.parse({"mouth_gain": 1.5, "head_gain": 0, "eye_retargeting": False, "smoothing": 0.0})
    cfg = c.apply(base)
    assert cfg.mouth_gain == 1.5 and cfg.head_gain == 0.0 and cfg.eye_retargeting is False
    assert cfg.brow_gain == base.brow_gain  # untouched
    light, heavy = Controls(smoothing=0.0).apply(base), Controls(smoothing=1.0).apply(base)
    assert light.filter_min_cutoff > 10 * heavy.filter_min_cutoff  # more smoothing = lower cutoff
    assert Controls(reset_neutral=True).changes_retarget() is False
    assert c.changes_retarget() is True


@pytest.mark.parametrize("bad, message", [
    ([], "JSON object"),
    ({"volume": 1}, "unknown control 'volume'"),
    ({"mouth_gain": "loud"}, "must be a number"),
    ({"mouth_gain": True}, "must be a number"),
    ({"mouth_gain": 9}, "out of range"),
    ({"smoothing": -0.1}, "out of range"),
    ({"reset_neutral": 1}, "true or false"),
])
def test_bad_controls_are_refused_with_a_reason(bad: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Controls.parse(bad)
