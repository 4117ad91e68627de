"""Pose estimation and the rig/measurement pair, on the canonical face (no tracker needed)."""

from __future__ import annotations

import numpy as np
import pytest
from livepuppet.engine.face.canonical_face import canonical_face
from livepuppet.engine.face.expression import FaceFeatures, relative_expression
from livepuppet.engine.face.geometry import estimate_pose
from livepuppet.engine.motion.rig import FaceRig
from livepuppet.engine.types import Expression, euler_to_matrix, matrix_to_euler


@pytest.mark.parametrize("angles", [(0, 0, 0), (20, -10, 5), (-30, 15, -12)])
def test_euler_round_trip(angles: tuple[float, float, float]) -> None:
    assert np.allclose(matrix_to_euler(euler_to_matrix(*angles)), angles, atol=1e-9)


@pytest.mark.parametrize("angles", [(0, 0, 0), (18, -8, 6), (-25, 12, -10)])
def test_pose_recovers_known_rotation_scale_translation(angles: tuple[float, float, float]) -> None:
    face = canonical_face()
    rot = euler_to_matrix(*angles)
    origin = np.array([250.0, 180.0, 10.0])
    pixels = origin + 60.0 * face @ rot.T
    pose = estimate_pose(pixels)
    assert np.allclose(matrix_to_euler(pose.rotation), angles, atol=1e-6)
    assert pose.scale == pytest.approx(60.0)
    assert np.allclose(pose.origin, origin)
    assert np.allclose(pose.to_face(pixels), face, atol=1e-9)


@pytest.mark.parametrize(
    "expression",
    [
        Expression(mouth_open=0.25, jaw=0.18),
        Expression(eye_open_l=0.0, eye_open_r=0.5),
        Expression(smile=0.08),
        Expression(brow_raise=0.1),
        Expression(mouth_width=0.15),
        Expression(mouth_round=0.8),
        Expression(gaze_x=0.3, gaze_y=-0.2),
    ],
)
def test_rig_and_measurement_agree(expression: Expression) -> None:
    """What the rig makes, the measurement reads back: the loop the retargeter relies on. Eye openness
    gets a wider tolerance: smiles squint and raised brows lift the lids a little, on purpose."""
    rig = FaceRig(canonical_face())
    neutral = FaceFeatures.measure(rig.neutral)
    measured = relative_expression(FaceFeatures.measure(rig.apply(expression)), neutral)
    for name in ("mouth_open", "jaw", "eye_open_l", "eye_open_r", "smile", "brow_raise", "mouth_width",
                 "mouth_round", "gaze_x", "gaze_y"):
        tolerance = 0.1 if name.startswith("eye_open") else 0.03
        assert getattr(measured, name) == pytest.approx(getattr(expression, name), abs=tolerance), name


def test_lips_and_lids_never_cross() -> None:
    rig = FaceRig(canonical_face())
    closed = rig.apply(Expression(mouth_open=-0.5, eye_open_l=-1.0, eye_open_r=0.0))
    features = FaceFeatures.measure(closed)
    assert features.lip_gap >= -1e-9
    assert features.eye_gap_l >= -1e-9 and features.eye_gap_r >= -1e-9
