from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from livepuppet.engine.motion.motion_file import MotionClip, load_motion, save_motion
from livepuppet.engine.motion.scripted_motion import scripted_clip
from livepuppet.engine.types import Motion
from livepuppet.errors import InputError


def test_round_trip(tmp_path: Path) -> None:
    clip = scripted_clip(1.0, 25.0)
    deltas = np.linspace(-0.1, 0.1, 478 * 3, dtype=np.float32).reshape(478, 3)
    motions = (*clip.motions[:-1], Motion(pts=clip.motions[-1].pts, seq=24, deltas=deltas, face_found=False))
    path = tmp_path / "m.json"
    save_motion(path, MotionClip(fps=25.0, motions=motions))
    back = load_motion(path)
    assert back.fps == 25.0 and len(back.motions) == 25
    for a, b in zip(motions, back.motions, strict=False):
        assert a.pts == pytest.approx(b.pts, abs=1000)
        assert np.allclose(a.expression.as_array(), b.expression.as_array(), atol=1e-4)
        assert a.head.yaw == pytest.approx(b.head.yaw, abs=1e-4)
    assert back.motions[-1].face_found is False
    assert np.allclose(back.motions[-1].deltas, deltas, atol=1e-4)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ('{"format": "other"}', "not a livepuppet motion file"),
        ('{"format": "livepuppet-motion", "version": 9, "fps": 25, "frames": [{}]}', "version 9"),
        ('{"format": "livepuppet-motion", "version": 1, "fps": 25, "frames": []}', "at least one frame"),
        ('{"format": "livepuppet-motion", "version": 1, "fps": 25, "frames": [{"head": {"yawn": 1}}]}', "unknown keys"),
        ('{"format": "livepuppet-motion", "version": 1, "fps": 25, "frames": [{"deltas": [[1, 2]]}]}', "deltas"),
    ],
)
def test_malformed_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        load_motion(path)
