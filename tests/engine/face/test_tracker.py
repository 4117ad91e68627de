"""The tracker's reading of MediaPipe's landmarks: from serialized bytes, exactly as field by field."""

from __future__ import annotations

import numpy as np
from livepuppet.engine.face.tracker import FaceTracker, landmarks_array
from livepuppet.engine.source import PreparedSource


def _field_by_field(landmark_list: object) -> np.ndarray:
    return np.array([(p.x, p.y, p.z) for p in landmark_list.landmark], dtype=np.float32)  # type: ignore[attr-defined]


def test_landmarks_read_from_bytes_equal_the_fields(prepared: PreparedSource, static_tracker: FaceTracker) -> None:
    result = static_tracker._mesh.process(np.ascontiguousarray(prepared.crop))
    faces = result.multi_face_landmarks
    assert faces, "the portrait's face must be found"
    got = landmarks_array(faces[0])
    assert got.shape == (478, 3) and got.dtype == np.float32
    assert np.array_equal(got, _field_by_field(faces[0]))


def test_other_layouts_are_read_field_by_field() -> None:
    """Visibility set, a zero coordinate, a value that looks like a tag byte: still the right numbers."""
    from mediapipe.framework.formats import landmark_pb2

    points = landmark_pb2.NormalizedLandmarkList()
    for i in range(5):
        p = points.landmark.add()
        p.x, p.y, p.z = 0.1 * i, float(np.frombuffer(bytes([0x0A, 0x0F, 0x0D, 0x3F]), "<f4")[0]), 0.0
    plain = landmarks_array(points)
    assert np.array_equal(plain, _field_by_field(points))
    points.landmark[2].visibility = 0.5
    assert np.array_equal(landmarks_array(points), _field_by_field(points))
