"""Source preparation: once per portrait, find the face, cut the square crop that gets animated,
and build everything the per-frame stages reuse (landmarks, pose, rig, warp mesh, mouth colors)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.face import topology as ft
from livepuppet.engine.face.face_finder import locate_face
from livepuppet.engine.face.geometry import estimate_pose
from livepuppet.engine.face.tracker import FaceTracker
from livepuppet.engine.motion.rig import FaceRig
from livepuppet.engine.types import NUM_LANDMARKS, FacePose, FaceTrack, VideoFrame
from livepuppet.errors import InputError, NoFaceError
from scipy.spatial import Delaunay, cKDTree

MIN_IOD_PX = 12.0  # below this the face is too small to animate


@dataclass(frozen=True, slots=True)
class CropBox:
    """A square region of the full portrait: top-left corner and side in full-image pixels."""

    x0: int
    y0: int
    side: int

    def to_crop(self, points: np.ndarray, crop_size: int) -> np.ndarray:
        k = crop_size / self.side
        out = np.array(points, dtype=np.float64, copy=True)
        out[:, 0] = (out[:, 0] - self.x0 + 0.5) * k - 0.5
        out[:, 1] = (out[:, 1] - self.y0 + 0.5) * k - 0.5
        if out.shape[1] > 2:
            out[:, 2] *= k
        return out


@dataclass(frozen=True, slots=True)
class WarpMesh:
    """The warp mesh over the crop: 478 face landmarks, then ring points (hair, ears, neck, shoulders),
    then fixed border points. ``ring_weight`` (R,) says how much each ring point follows the head (a share
    that decays smoothly with distance from the face and to zero at the crop border, so the neck and
    collar follow without a crease); ``ring_local`` (R,) how much of that motion is the nearby face
    outline's own motion rather than the outline's best-fit affine motion (1 next to the face, so the
    silhouette strip moves with the cheek it borders; 0 far away, where smoothness matters more);
    ``ring_body`` (R,) how much of the affine part is only its translation at the chin (1 for the neck,
    collar and shoulders: the body follows the head along but does not grow or turn with it)."""

    points: np.ndarray  # (P, 2) f32 source positions in crop pixels
    triangles: np.ndarray  # (T, 3) int32
    ring_weight: np.ndarray  # (R,) f32
    num_ring: int
    ring_local: np.ndarray  # (R,) f32
    ring_body: np.ndarray  # (R,) f32

    @property
    def ring_slice(self) -> slice:
        return slice(NUM_LANDMARKS, NUM_LANDMARKS + self.num_ring)


@dataclass(frozen=True, slots=True)
class MouthLook:
    """Colors for synthesizing the mouth interior, sampled from the portrait (RGB floats 0–255)."""

    lip: np.ndarray
    cavity: np.ndarray
    teeth: np.ndarray
    tongue: np.ndarray
    source_open_area: float  # inner-mouth polygon area in the source, in crop pixels²


@dataclass(frozen=True, slots=True)
class PreparedSource:
    """Everything about one portrait that does not change from frame to frame."""

    image: np.ndarray  # (H, W, 3) u8 RGB, the full portrait
    box: CropBox
    crop: np.ndarray  # (S, S, 3) u8 RGB
    landmarks: np.ndarray  # (478, 3) f64 in crop pixels
    pose: FacePose  # in crop pixels
    neutral: np.ndarray  # (478, 3) f64 face-frame landmarks
    rig: FaceRig
    mesh: WarpMesh
    mouth: MouthLook

    @property
    def crop_size(self) -> int:
        return int(self.crop.shape[0])


def prepare_source(image: np.ndarray, config: EngineConfig, face: int | None = None) -> PreparedSource:
    """Portrait ``(H, W, 3) u8 RGB`` → :class:`PreparedSource` of its largest face (or the ``face``-th from
    the left). Raises :class:`NoFaceError` if no face."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"portrait must be an RGB uint8 image, got shape {image.shape} {image.dtype}")
    with FaceTracker(config.tracker, static=True) as tracker:
        full = locate_face(image, tracker, face)  # small faces in large photos: tiled detection, then the mesh
        if not full.found or full.pose is None:
            raise NoFaceError("no face found in the portrait: use a photo with one clearly visible, roughly "
                              "frontal face")
        if full.pose.scale < MIN_IOD_PX:
            raise NoFaceError(f"the face in the portrait is too small ({full.pose.scale:.0f} px between the eyes; "
                              f"need at least {MIN_IOD_PX:.0f}): use a closer or larger photo")
        size = config.render.crop_size
        box = _crop_box(full.pose, config.render.crop_scale, image.shape[:2])
        crop = extract_crop(image, box, size)
        # Re-track on the crop: the face fills it, so landmarks are more precise than scaled ones.
        refined = tracker.track(VideoFrame(crop, 0, 0))
    landmarks = _choose_landmarks(refined, box.to_crop(full.landmarks, size))  # type: ignore[arg-type]
    pose = estimate_pose(landmarks)
    neutral = pose.to_face(landmarks)
    mesh = build_mesh(landmarks, size)
    return PreparedSource(image=image, box=box, crop=crop, landmarks=landmarks, pose=pose, neutral=neutral,
                          rig=FaceRig(neutral), mesh=mesh, mouth=_mouth_look(crop, landmarks))


def _choose_landmarks(refined: FaceTrack, fallback: np.ndarray) -> np.ndarray:
    if refined.found and refined.landmarks is not None:
        return refined.landmarks.astype(np.float64)
    return fallback


def _crop_box(pose: FacePose, crop_scale: float, image_size: tuple[int, int]) -> CropBox:
    """``crop_scale`` inter-ocular distances around the face, moved (and if need be shrunk) to lie inside the
    photo: beyond its edges there is nothing to show but replicated edge pixels, streaks in every frame."""
    h, w = image_size
    center = pose.origin + pose.rotation @ np.array([0.0, 0.55, 0.0]) * pose.scale
    side = max(16, min(round(crop_scale * pose.scale), h, w))
    x0 = min(max(round(center[0] - side / 2), 0), max(w - side, 0))
    y0 = min(max(round(center[1] - side / 2), 0), max(h - side, 0))
    return CropBox(x0=x0, y0=y0, side=side)


def extract_crop(image: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """The ``box`` region of ``image`` (edge pixels replicated outside it) resized to ``size``²."""
    h, w = image.shape[:2]
    pad_l, pad_t = max(0, -box.x0), max(0, -box.y0)
    pad_r, pad_b = max(0, box.x0 + box.side - w), max(0, box.y0 + box.side - h)
    region = image[max(0, box.y0): box.y0 + box.side, max(0, box.x0): box.x0 + box.side]
    if pad_l or pad_t or pad_r or pad_b:
        region = cv2.copyMakeBorder(region, pad_t, pad_b, pad_l, pad_r, cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if box.side > size else cv2.INTER_CUBIC
    return cv2.resize(region, (size, size), interpolation=interp)


# Ring levels around the face oval, as multiples of its radius. Dense enough that the piecewise-linear
# mesh follows the smooth share below without visible kinks (the old two rings showed steps at large yaw).
RING_LEVELS = (1.1, 1.22, 1.36, 1.52, 1.72, 1.96, 2.25, 2.6)
RING_FALLOFF = 1.3  # the head's share reaches 0 this many oval radii beyond the oval
LOCAL_FALLOFF = 0.75  # the share taken from the nearby outline's own motion reaches 0 this far out
NECK_WIDTH = 0.8  # face widths: below the jaw the share fades sideways over this, from the neck to the shoulders
BODY_BLEND = 0.2  # face heights: above the chin by this much the hair's share turns into the neck's
EDGE_FADE = 0.15  # the share fades to 0 over this fraction of the crop side near the fixed border


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def build_mesh(landmarks: np.ndarray, size: int) -> WarpMesh:
    """Warp mesh: landmarks + rings around the face (hair, ears, neck, shoulders) + the crop border."""
    face = landmarks[:, :2].astype(np.float64)
    oval = face[list(ft.FACE_OVAL)]
    center = oval.mean(axis=0)
    chin_y = face[ft.CHIN, 1]
    height = float(np.ptp(oval[:, 1]))
    levels = np.array(RING_LEVELS)
    ring = (center + levels[:, None, None] * (oval - center)).reshape(-1, 2)
    level = np.repeat(levels, len(oval))
    head_share = 1.0 - _smoothstep((level - 1.0) / RING_FALLOFF)
    # Below the jaw (neck, collar, shoulders) the share decays evenly from the chin down to the crop's edge,
    # so a head that moves stretches or squeezes the whole neck a little, not one strip under the chin a lot;
    # it fades sideways towards the shoulders. A smooth blend with the hair's share, not a step at the chin.
    body = _smoothstep((ring[:, 1] - (chin_y - BODY_BLEND * height)) / (BODY_BLEND * height))
    width = float(np.ptp(oval[:, 0]))
    neck = (1.0 - _smoothstep((ring[:, 1] - chin_y) / max(size - chin_y, 1.0))) \
        * (1.0 - _smoothstep(np.abs(ring[:, 0] - face[ft.CHIN, 0]) / (NECK_WIDTH * width)))
    weights = (1.0 - body) * head_share + body * neck
    # The neck follows the chin, not the widening jaw: the nearby outline's own motion is for the hair.
    local = (1.0 - _smoothstep((level - 1.0) / LOCAL_FALLOFF)) * (1.0 - body)
    inside = np.all((ring >= 1.0) & (ring <= size - 2.0), axis=1)  # points beyond the crop add nothing
    keep = np.flatnonzero(inside)[_spread(ring[inside], face, min_dist=0.02 * size)]
    ring, weights, local, body = ring[keep], weights[keep], local[keep], body[keep]
    edge_dist = np.minimum(ring, size - 1 - ring).min(axis=1)
    weights = weights * _smoothstep(edge_dist / (EDGE_FADE * size))  # the border does not move
    edge = np.linspace(-1.0, size, 13)
    border = np.concatenate([
        np.stack([edge, np.full_like(edge, -1.0)], 1), np.stack([edge, np.full_like(edge, float(size))], 1),
        np.stack([np.full_like(edge, -1.0), edge], 1)[1:-1], np.stack([np.full_like(edge, float(size)), edge], 1)[1:-1],
    ])
    points = np.concatenate([face, ring, border]).astype(np.float32)
    tris = Delaunay(points.astype(np.float64)).simplices.astype(np.int32)
    p = points[tris].astype(np.float64)
    area = 0.5 * np.abs((p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1])
                        - (p[:, 2, 0] - p[:, 0, 0]) * (p[:, 1, 1] - p[:, 0, 1]))
    tris = tris[area > 1e-6]
    return WarpMesh(points=points, triangles=tris, ring_weight=weights.astype(np.float32),
                    num_ring=len(ring), ring_local=local.astype(np.float32), ring_body=body.astype(np.float32))


def _spread(candidates: np.ndarray, fixed: np.ndarray, min_dist: float) -> np.ndarray:
    """Indices of candidates kept so that none lies within ``min_dist`` of a fixed or kept point."""
    fixed_tree = cKDTree(fixed)
    kept: list[int] = []
    for i, p in enumerate(candidates):
        if fixed_tree.query(p)[0] < min_dist:
            continue
        if kept and np.min(np.hypot(*(candidates[kept] - p).T)) < min_dist:
            continue
        kept.append(i)
    return np.array(kept, dtype=np.int64)


def _polygon_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * float(abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def inner_mouth_area(landmarks: np.ndarray) -> float:
    """Area of the inner-lip polygon (pixels²)."""
    return _polygon_area(landmarks[ft.inner_mouth_polygon(), :2])


def _mouth_look(crop: np.ndarray, landmarks: np.ndarray) -> MouthLook:
    mask = np.zeros(crop.shape[:2], np.uint8)
    outer = np.array(ft.LIP_OUTER_UPPER + ft.LIP_OUTER_LOWER[-2:0:-1])
    cv2.fillPoly(mask, [np.round(landmarks[outer, :2]).astype(np.int32)], 255)
    cv2.fillPoly(mask, [np.round(landmarks[ft.inner_mouth_polygon(), :2]).astype(np.int32)], 0)
    pixels = crop[mask > 0]
    lip = np.median(pixels, axis=0) if len(pixels) else np.array([170.0, 90.0, 90.0])
    lip = lip.astype(np.float64)
    brightness = float(np.clip(crop.mean() / 128.0, 0.6, 1.3))
    cavity = np.clip(lip * np.array([0.28, 0.16, 0.16]), 8, 90)
    teeth = np.clip(np.array([232.0, 226.0, 212.0]) * brightness, 150, 250)
    tongue = np.clip(lip * np.array([0.85, 0.55, 0.55]) + np.array([20.0, 0.0, 0.0]), 40, 230)
    return MouthLook(lip=lip, cavity=cavity, teeth=teeth, tongue=tongue,
                     source_open_area=inner_mouth_area(landmarks))


def shrink_source(source: PreparedSource, max_side: int) -> PreparedSource:
    """``source`` with its full portrait downscaled so the longer side is at most ``max_side`` (its crop box
    scaled along). The crop, mesh and landmarks were cut from the full-size photo and stay as they are; the
    full portrait only serves paste-back, so a 25-megapixel upload keeps a few megabytes, not ~100, and a
    video at the output's size is composited at that size, not the photo's."""
    h, w = source.image.shape[:2]
    k = max_side / max(h, w)
    if k >= 1.0:
        return source
    size = (max(1, round(w * k)), max(1, round(h * k)))
    image = np.ascontiguousarray(cv2.resize(source.image, size, interpolation=cv2.INTER_AREA))
    box = CropBox(x0=round(source.box.x0 * k), y0=round(source.box.y0 * k), side=max(1, round(source.box.side * k)))
    return replace(source, image=image, box=box)
