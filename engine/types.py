"""Typed contracts between the stages of the one-way data path.

input → frame ring → track (FaceTrack) → motion (Motion) → retarget (Target) → render → composite (RenderedFrame).
Every record carries ``pts`` (int nanoseconds on the injected clock) and ``seq`` and each stage copies them.
Array notation: ``(H, W, 3) u8 RGB`` means height × width × 3, uint8, RGB channel order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

NUM_LANDMARKS = 478


@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One input picture: pixels ``(H, W, 3) u8 RGB`` plus capture time and sequence number."""

    pixels: np.ndarray
    pts: int
    seq: int


@dataclass(frozen=True, slots=True)
class FacePose:
    """Absolute head pose of a tracked face.

    ``rotation`` (3, 3) f64 maps face-frame axes to image axes (x right, y down, z into the screen);
    ``origin`` (3,) f64 is the mid-point between the eyes in pixels; ``scale`` is pixels per face unit
    (one face unit = the canonical face's inter-ocular distance).
    """

    rotation: np.ndarray
    origin: np.ndarray
    scale: float

    def to_face(self, points: np.ndarray) -> np.ndarray:
        """Image pixels ``(N, 3)`` → face frame ``(N, 3)`` in inter-ocular units."""
        return ((points - self.origin) @ self.rotation) / self.scale

    def to_image(self, face_points: np.ndarray) -> np.ndarray:
        """Face frame ``(N, 3)`` → image pixels ``(N, 3)``."""
        return self.origin + self.scale * (face_points @ self.rotation.T)


@dataclass(frozen=True, slots=True)
class FaceTrack:
    """A tracker's output for one frame: landmarks ``(478, 3) f32`` in pixels (z in x-pixel units),
    pose, confidence and the face's look, or ``landmarks is None`` when no face was found."""

    pts: int
    seq: int
    image_size: tuple[int, int]  # (height, width)
    landmarks: np.ndarray | None = None
    pose: FacePose | None = None
    confidence: float = 0.0
    look: np.ndarray | None = None  # (K, 3) Lab patch colours (face/appearance.py): a cut changes them at once

    @property
    def found(self) -> bool:
        return self.landmarks is not None


@dataclass(frozen=True, slots=True)
class HeadMotion:
    """Head motion relative to the driver's reference: Euler angles in degrees about image axes
    (R = Rz(roll) Rx(pitch) Ry(yaw); yaw > 0 turns the nose towards screen-left),
    translation in inter-ocular units (x right, y down) and scale ratio (1 = same distance)."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    tx: float = 0.0
    ty: float = 0.0
    scale: float = 1.0

    def rotation(self) -> np.ndarray:
        """Rotation matrix (3, 3) f64 in image axes for these angles (R = Rz(roll) Rx(pitch) Ry(yaw))."""
        return euler_to_matrix(self.yaw, self.pitch, self.roll)


@dataclass(frozen=True, slots=True)
class Expression:
    """Expression coefficients, relative to the neutral reference, image-independent.

    eye_open_*: 1 = as neutral, 0 = closed, >1 wider. brow_raise, mouth_open (inner-lip gap), jaw (chin
    drop), smile (corner lift) are in inter-ocular units, 0 = neutral. mouth_width is a relative change
    (+0.1 = 10 % wider), mouth_round a pucker amount in [0, 1]. gaze_x/gaze_y in [-1, 1] (right, down).
    """

    eye_open_l: float = 1.0
    eye_open_r: float = 1.0
    brow_raise: float = 0.0
    mouth_open: float = 0.0
    mouth_width: float = 0.0
    mouth_round: float = 0.0
    smile: float = 0.0
    jaw: float = 0.0
    gaze_x: float = 0.0
    gaze_y: float = 0.0

    def as_array(self) -> np.ndarray:
        return np.array([getattr(self, f.name) for f in fields(self)], dtype=np.float64)

    @classmethod
    def from_array(cls, values: np.ndarray) -> Expression:
        return cls(*(float(v) for v in values))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))



@dataclass(frozen=True, slots=True)
class Motion:
    """What the driver did, independent of any image. ``deltas`` (478, 3) f32 are optional raw landmark
    offsets from the reference in the face frame (inter-ocular units); ``face_found`` is False when the
    tracker lost the face (the retargeter then holds and eases back to neutral)."""

    pts: int
    seq: int
    head: HeadMotion = field(default_factory=HeadMotion)
    expression: Expression = field(default_factory=Expression)
    deltas: np.ndarray | None = None
    face_found: bool = True


@dataclass(frozen=True, slots=True)
class Target:
    """What the portrait should do: target landmarks ``(478, 3) f32`` in source-crop pixels, plus the
    expression that produced them (the renderer uses it for the mouth interior and eyelids)."""

    pts: int
    seq: int
    landmarks: np.ndarray
    expression: Expression
    head: HeadMotion


@dataclass(frozen=True, slots=True)
class RenderedFrame:
    """Output pixels ``(H, W, 3) u8 RGB`` plus the input timestamps that produced them and the time
    each stage finished (ns on the engine clock), for latency accounting and A/V sync."""

    pixels: np.ndarray
    pts: int
    seq: int
    stage_ns: tuple[tuple[str, int], ...] = ()


def euler_to_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Degrees → rotation (3, 3) in image axes: R = Rz(roll) @ Rx(pitch) @ Ry(yaw)."""
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    cy, sy, cp, sp, cr, sr = math.cos(y), math.sin(y), math.cos(p), math.sin(p), math.cos(r), math.sin(r)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ rx @ ry


def matrix_to_euler(rot: np.ndarray) -> tuple[float, float, float]:
    """Inverse of :func:`euler_to_matrix`: rotation (3, 3) → (yaw, pitch, roll) in degrees."""
    # R = Rz Rx Ry: R[2,1] = sin(p); R[2,0] = -cp*sy; R[2,2] = cp*cy; R[0,1] = -sr*cp; R[1,1] = cr*cp.
    p = math.asin(max(-1.0, min(1.0, float(rot[2, 1]))))
    y = math.atan2(-float(rot[2, 0]), float(rot[2, 2]))
    r = math.atan2(-float(rot[0, 1]), float(rot[1, 1]))
    return math.degrees(y), math.degrees(p), math.degrees(r)
