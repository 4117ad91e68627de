"""Face tracking with MediaPipe's face mesh (478 points with iris), fully offline.

MediaPipe 0.10.21 is the last wheel that ships its face models; newer ones need a downloaded bundle.
Tracking mode follows a face across video frames (3–7 ms a frame on a 2-core CPU); detection mode
(``static=True``) treats every image on its own, for portraits. A missing face is a normal result
(``FaceTrack.found is False``), never an exception.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from livepuppet.engine.config import TrackerConfig
from livepuppet.engine.face.appearance import face_look
from livepuppet.engine.face.geometry import estimate_pose
from livepuppet.engine.types import NUM_LANDMARKS, FaceTrack, VideoFrame
from livepuppet.errors import DependencyError

INSTALL_HINT = "pip install --no-deps mediapipe==0.10.21 'protobuf>=4.25.3,<5' absl-py attrs flatbuffers matplotlib"


def _import_face_mesh() -> Any:
    try:
        from mediapipe.python.solutions import face_mesh
    except ImportError as exc:
        raise DependencyError(f"face tracking needs MediaPipe 0.10.21 ({exc}); install it with: "
                              f"{INSTALL_HINT}") from exc
    return face_mesh


class FaceTracker:
    """One MediaPipe face-mesh instance: not thread-safe, one per stream."""

    def __init__(self, config: TrackerConfig, static: bool = False) -> None:
        face_mesh = _import_face_mesh()
        self._config = config
        self._mesh = face_mesh.FaceMesh(
            static_image_mode=static,
            max_num_faces=1,
            refine_landmarks=config.refine_landmarks,
            min_detection_confidence=config.min_detection_confidence,
            min_tracking_confidence=config.min_tracking_confidence,
        )

    def close(self) -> None:
        self._mesh.close()

    def reset(self) -> None:
        """Forget the previous frames (tracking state) so the instance can serve a new stream."""
        self._mesh.reset()

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def track(self, frame: VideoFrame) -> FaceTrack:
        """Landmarks and pose of the most prominent face in ``frame`` (or a no-face track)."""
        pixels = frame.pixels
        h, w = pixels.shape[:2]
        k = min(1.0, self._config.max_side / max(h, w))
        small = cv2.resize(pixels, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA) \
            if k < 1.0 else pixels
        result = self._mesh.process(np.ascontiguousarray(small))
        faces = result.multi_face_landmarks
        if not faces:
            return FaceTrack(pts=frame.pts, seq=frame.seq, image_size=(h, w))
        raw = landmarks_array(faces[0])
        if raw.shape[0] < NUM_LANDMARKS:  # refine_landmarks off: no iris points; put iris at eye centers
            raw = _add_iris(raw)
        landmarks = raw * np.array([w, h, w], dtype=np.float32)
        try:
            pose = estimate_pose(landmarks)
        except ValueError:
            return FaceTrack(pts=frame.pts, seq=frame.seq, image_size=(h, w))
        look = face_look(small, raw[:, :2] * np.array([small.shape[1], small.shape[0]], dtype=np.float32))
        return FaceTrack(pts=frame.pts, seq=frame.seq, image_size=(h, w), landmarks=landmarks, pose=pose,
                         confidence=1.0, look=look)


# A NormalizedLandmarkList as serialized: each landmark a length-delimited field 1 of 15 bytes holding
# x, y, z as fixed32 fields 1, 2, 3 (MediaPipe sets no visibility or presence on face-mesh points).
_LANDMARK_WIRE = np.dtype([("tag", "u1"), ("size", "u1"), ("tag_x", "u1"), ("x", "<f4"), ("tag_y", "u1"),
                           ("y", "<f4"), ("tag_z", "u1"), ("z", "<f4")])
_WIRE_TAGS = {"tag": 0x0A, "size": 15, "tag_x": 0x0D, "tag_y": 0x15, "tag_z": 0x1D}


def landmarks_array(landmark_list: Any) -> np.ndarray:
    """``(N, 3) f32`` normalized x, y, z of a MediaPipe ``NormalizedLandmarkList``, read from its serialized
    bytes in one go (20× faster than walking 478 protobuf messages; it was 0.6 ms of every tracked frame);
    any other layout is read field by field."""
    raw = landmark_list.SerializeToString()
    if len(raw) % _LANDMARK_WIRE.itemsize == 0:
        wire = np.frombuffer(raw, dtype=_LANDMARK_WIRE)
        if all(bool((wire[name] == value).all()) for name, value in _WIRE_TAGS.items()):
            return np.stack([wire["x"], wire["y"], wire["z"]], axis=1)
    return np.array([(p.x, p.y, p.z) for p in landmark_list.landmark], dtype=np.float32)


def _add_iris(raw: np.ndarray) -> np.ndarray:
    from livepuppet.engine.face import topology as ft

    out = np.zeros((NUM_LANDMARKS, 3), dtype=np.float32)
    out[: raw.shape[0]] = raw
    for start, outer, inner in ((468, ft.EYE_R_OUTER, ft.EYE_R_INNER), (473, ft.EYE_L_OUTER, ft.EYE_L_INNER)):
        center = 0.5 * (raw[outer] + raw[inner])
        half = 0.12 * np.linalg.norm(raw[outer, :2] - raw[inner, :2])
        out[start] = center
        for i, (dx, dy) in enumerate(((1, 0), (0, -1), (-1, 0), (0, 1))):
            out[start + 1 + i] = center + np.array([dx * half, dy * half, 0.0])
    return out
