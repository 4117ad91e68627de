"""Finding the portrait's face in photos of any size: small faces in large photos, several faces.

The face mesh sees a frame downscaled to ``tracker.max_side`` (640 px), where a face in a 4000×3000 group
photo or a panorama is a few pixels wide. So faces are first *detected* on a pyramid of square tiles
(coarse to fine: the whole photo, then halves, quarters …, each tile downscaled for the detector), then
each candidate is *refined* by running the mesh on a crop around it, which also rejects false detections.
Without a choice the largest face wins; ``face=N`` picks the N-th face counted from the left. An ordinary
portrait (the mesh on the whole photo finds the face the detector sees as largest) takes the old path.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
from livepuppet.engine.face.geometry import estimate_pose
from livepuppet.engine.face.tracker import FaceTracker
from livepuppet.engine.types import FaceTrack, VideoFrame
from livepuppet.errors import DependencyError, NoFaceError

DETECT_SIDE = 384  # tiles are downscaled to this before detection (the full-range model works at 192²)
MIN_TILE = 320  # finest tile side in pixels of the photo
TILE_OVERLAP = 0.3
MIN_SCORE = 0.5
MAX_CANDIDATES = 16  # refined per photo at most (each costs one mesh run)
REGION_SCALE = 3.0  # crop around a candidate, in face widths


@dataclass(frozen=True, slots=True)
class FaceBox:
    """A detected face: top-left corner and size in photo pixels, detector score in [0, 1]."""

    x: float
    y: float
    w: float
    h: float
    score: float

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2

    def iou(self, other: FaceBox) -> float:
        ix = max(0.0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0.0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        return inter / (self.w * self.h + other.w * other.h - inter + 1e-9)


class FaceDetector:
    """MediaPipe's full-range face detector (BlazeFace), fully offline; one per thread."""

    def __init__(self, min_score: float = MIN_SCORE) -> None:
        try:
            from mediapipe.python.solutions import face_detection
        except ImportError as exc:
            raise DependencyError(f"face detection needs MediaPipe 0.10.21 ({exc})") from exc
        self._detector: Any = face_detection.FaceDetection(model_selection=1, min_detection_confidence=min_score)

    def close(self) -> None:
        self._detector.close()

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def detect(self, tile: np.ndarray) -> list[FaceBox]:
        """Faces in one ``(h, w, 3) u8 RGB`` tile, in tile pixels."""
        h, w = tile.shape[:2]
        k = min(1.0, DETECT_SIDE / max(h, w))
        small = cv2.resize(tile, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA) \
            if k < 1.0 else tile
        result = self._detector.process(np.ascontiguousarray(small))
        boxes = []
        for det in result.detections or []:
            b = det.location_data.relative_bounding_box
            boxes.append(FaceBox(b.xmin * w, b.ymin * h, b.width * w, b.height * h, float(det.score[0])))
        return [b for b in boxes if b.w > 0 and b.h > 0]

    def pyramid(self, image: np.ndarray, min_tile: int = MIN_TILE) -> Iterator[list[FaceBox]]:
        """Detections per pyramid level, coarse to fine, in photo pixels."""
        h, w = image.shape[:2]
        side = max(h, w)
        while True:
            found: list[FaceBox] = []
            for y0, x0 in _tiles(h, w, side):
                tile = image[y0:y0 + side, x0:x0 + side]
                found += [replace(b, x=b.x + x0, y=b.y + y0) for b in self.detect(tile)]
            yield found
            if side <= min_tile or side <= 2 * DETECT_SIDE // 3:
                return
            side = max(min_tile, side // 2)


def _tiles(h: int, w: int, side: int) -> list[tuple[int, int]]:
    step = max(1, int(side * (1.0 - TILE_OVERLAP)))

    def starts(n: int) -> list[int]:
        if n <= side:
            return [0]
        out = list(range(0, n - side + 1, step))
        return out if out[-1] + side >= n else [*out, n - side]

    return [(y, x) for y in starts(h) for x in starts(w)]


def _merge(boxes: list[FaceBox], new: list[FaceBox]) -> list[FaceBox]:
    """Non-maximum suppression: a new box overlapping a kept one replaces it only with a higher score."""
    out = list(boxes)
    for b in sorted(new, key=lambda b: -b.score):
        clash = [i for i, kept in enumerate(out) if kept.iou(b) > 0.3]
        if not clash:
            out.append(b)
        elif all(out[i].score < b.score for i in clash):
            out = [kept for i, kept in enumerate(out) if i not in clash] + [b]
    return out


def refine(image: np.ndarray, box: FaceBox, tracker: FaceTracker) -> FaceTrack | None:
    """Run the face mesh on a crop around ``box``; the track in photo pixels, or None when the mesh finds
    no face there (a false detection) or finds a different face."""
    h, w = image.shape[:2]
    cx, cy = box.center
    half = REGION_SCALE * max(box.w, box.h) / 2
    x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
    x1, y1 = min(w, int(cx + half) + 1), min(h, int(cy + half) + 1)
    track = tracker.track(VideoFrame(np.ascontiguousarray(image[y0:y1, x0:x1]), 0, 0))
    if not track.found or track.landmarks is None:
        return None
    landmarks = track.landmarks + np.array([x0, y0, 0.0], dtype=np.float32)
    if not _centered_in(landmarks, box):
        return None
    try:
        pose = estimate_pose(landmarks)
    except ValueError:
        return None
    return FaceTrack(pts=0, seq=0, image_size=(h, w), landmarks=landmarks, pose=pose, confidence=box.score)


def _centered_in(landmarks: np.ndarray, box: FaceBox) -> bool:
    """Whether the landmarks' centre lies in ``box`` (with a quarter of its size as margin)."""
    mx, my = float(landmarks[:, 0].mean()), float(landmarks[:, 1].mean())
    return box.x - 0.25 * box.w <= mx <= box.x + 1.25 * box.w and box.y - 0.25 * box.h <= my <= box.y + 1.25 * box.h


def locate_face(image: np.ndarray, tracker: FaceTracker, face: int | None = None) -> FaceTrack:
    """The portrait's face as a track in photo pixels: the largest face found, or the ``face``-th from the
    left. A photo without any face gives a not-found track (the caller words the error); a ``face``
    index beyond the faces found raises :class:`NoFaceError`."""
    with FaceDetector() as detector:
        levels = detector.pyramid(image)
        first = next(levels)
        if face is None:  # the usual portrait: the mesh on the whole photo finds the one (largest) face
            whole = tracker.track(VideoFrame(image, 0, 0))
            if whole.found and whole.landmarks is not None and (
                    not first or _centered_in(whole.landmarks, max(first, key=lambda b: b.w * b.h))):
                return whole
        boxes: list[FaceBox] = []
        refined: dict[FaceBox, FaceTrack | None] = {}
        for level in itertools.chain([first], levels):
            boxes = _merge(boxes, level)
            if face is None:
                for box in sorted(boxes, key=lambda b: -b.w * b.h)[:MAX_CANDIDATES]:
                    if box not in refined:
                        refined[box] = refine(image, box, tracker)
                    if refined[box] is not None:
                        return refined[box]  # type: ignore[return-value]
    if face is None:  # nothing anywhere the mesh confirms
        return FaceTrack(pts=0, seq=0, image_size=(image.shape[0], image.shape[1]))
    faces = [t for t in (refine(image, b, tracker) for b in sorted(boxes, key=lambda b: -b.score)[:MAX_CANDIDATES])
             if t is not None]
    faces = _distinct(faces)
    faces.sort(key=lambda t: float(t.pose.origin[0]))  # type: ignore[union-attr]
    if face >= len(faces):
        raise NoFaceError(f"--face {face}: the portrait has {len(faces)} face(s) found, numbered 0 to "
                          f"{len(faces) - 1} from the left" if faces else "no face found in the portrait")
    return faces[face]


def _distinct(tracks: list[FaceTrack]) -> list[FaceTrack]:
    """Drop tracks of the same face found from two candidates (origins within half a face apart)."""
    out: list[FaceTrack] = []
    for t in tracks:
        assert t.pose is not None
        if all(np.linalg.norm(t.pose.origin[:2] - o.pose.origin[:2]) > 0.5 * t.pose.scale for o in out):  # type: ignore[union-attr]
            out.append(t)
    return out
