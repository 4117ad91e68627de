"""Implicit-keypoint algebra: pose bins → degrees, rotation matrices, the keypoint transform
``x = s · (x_c R + δ) + t`` (LivePortrait's Eqn. 2, row vectors) and the stitching/retargeting corrections.

Rotations use the renderer's image axes (x right, y down, z into the screen), the same as
:func:`livepuppet.engine.types.euler_to_matrix` but composed as LivePortrait does: ``R = Rz(roll) Ry(yaw)
Rx(pitch)`` acting on column vectors, so row-vector keypoints are multiplied by ``R^T``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from livepuppet.engine.neural.motion_extractor import MotionOutput
from livepuppet.engine.neural.stitching import RetargetingMlp

BIN_DEGREES = 3.0  # width of one pose bin
BIN_OFFSET = 97.5  # degrees subtracted from the expected bin position (66 bins → [-97.5, 97.5])


@dataclass(frozen=True, slots=True)
class KeypointInfo:
    """Motion extractor output in usable units: ``kp``/``exp (B, K, 3)``, ``pitch``/``yaw``/``roll (B,)``
    degrees, ``t (B, 3)``, ``scale (B, 1)``."""

    kp: torch.Tensor
    exp: torch.Tensor
    pitch: torch.Tensor
    yaw: torch.Tensor
    roll: torch.Tensor
    t: torch.Tensor
    scale: torch.Tensor

    @classmethod
    def from_motion(cls, m: MotionOutput) -> KeypointInfo:
        b = m.kp.shape[0]
        return cls(kp=m.kp.reshape(b, -1, 3), exp=m.exp.reshape(b, -1, 3), pitch=bins_to_degrees(m.pitch),
                   yaw=bins_to_degrees(m.yaw), roll=bins_to_degrees(m.roll), t=m.t, scale=m.scale)

    def rotation(self) -> torch.Tensor:
        return rotation_matrix(self.pitch, self.yaw, self.roll)

    def transformed(self) -> torch.Tensor:
        """The posed keypoints ``(B, K, 3)``."""
        return transform_keypoints(self.kp, self.rotation(), self.exp, self.scale, self.t)


def bins_to_degrees(logits: torch.Tensor) -> torch.Tensor:
    """Pose-bin logits ``(B, N)`` → expected angle ``(B,)`` in degrees."""
    idx = torch.arange(logits.shape[1], dtype=logits.dtype, device=logits.device)
    return (torch.softmax(logits, dim=1) * idx).sum(dim=1) * BIN_DEGREES - BIN_OFFSET


def rotation_matrix(pitch: torch.Tensor, yaw: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Degrees ``(B,)`` each → ``(B, 3, 3)`` matrix to right-multiply row-vector keypoints: ``(Rz Ry Rx)^T``."""
    x, y, z = (a * (math.pi / 180.0) for a in (pitch, yaw, roll))
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    cx, sx, cy, sy, cz, sz = torch.cos(x), torch.sin(x), torch.cos(y), torch.sin(y), torch.cos(z), torch.sin(z)
    rx = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], dim=-1).reshape(-1, 3, 3)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], dim=-1).reshape(-1, 3, 3)
    rz = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], dim=-1).reshape(-1, 3, 3)
    return (rz @ ry @ rx).transpose(1, 2)


def transform_keypoints(kp: torch.Tensor, rot: torch.Tensor, exp: torch.Tensor, scale: torch.Tensor,
                        t: torch.Tensor) -> torch.Tensor:
    """``s · (kp @ rot + exp) + (tx, ty, 0)``; ``kp``/``exp (B, K, 3)``, ``rot (B, 3, 3)``, ``scale (B, 1)``,
    ``t (B, 3)`` (its z is ignored, as published)."""
    out = (kp @ rot + exp) * scale.reshape(-1, 1, 1)
    shift = torch.cat([t[:, :2], torch.zeros_like(t[:, 2:])], dim=1)
    return out + shift.unsqueeze(1)


def stitch(mlp: RetargetingMlp, kp_source: torch.Tensor, kp_driving: torch.Tensor) -> torch.Tensor:
    """Stitching: the MLP predicts a keypoint delta ``(B, K, 3)`` plus a shared ``(tx, ty)`` that keep the
    animated face aligned with the pasted-back shoulders; returns the corrected driving keypoints."""
    b, k, _ = kp_source.shape
    delta = mlp(torch.cat([kp_source.reshape(b, -1), kp_driving.reshape(b, -1)], dim=1))
    shift = torch.cat([delta[:, 3 * k:3 * k + 2], torch.zeros_like(delta[:, :1])], dim=1)
    return kp_driving + delta[:, :3 * k].reshape(b, k, 3) + shift.unsqueeze(1)


def retarget_eyes(mlp: RetargetingMlp, kp_source: torch.Tensor, eye_ratios: torch.Tensor) -> torch.Tensor:
    """Keypoint delta ``(B, K, 3)`` for ``eye_ratios (B, 3)`` = source left, source right, target openness."""
    b, k, _ = kp_source.shape
    return mlp(torch.cat([kp_source.reshape(b, -1), eye_ratios], dim=1)).reshape(b, k, 3)


def retarget_lips(mlp: RetargetingMlp, kp_source: torch.Tensor, lip_ratios: torch.Tensor) -> torch.Tensor:
    """Keypoint delta ``(B, K, 3)`` for ``lip_ratios (B, 2)`` = source openness, target openness."""
    b, k, _ = kp_source.shape
    return mlp(torch.cat([kp_source.reshape(b, -1), lip_ratios], dim=1)).reshape(b, k, 3)
