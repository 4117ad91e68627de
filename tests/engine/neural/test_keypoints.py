"""Keypoint algebra: bins → degrees, rotations, the transform, stitching and retargeting deltas."""

from __future__ import annotations

import numpy as np
import torch
from livepuppet.engine.neural.arch import MlpParams
from livepuppet.engine.neural.keypoints import bins_to_degrees, rotation_matrix, stitch, transform_keypoints
from livepuppet.engine.neural.stitching import RetargetingMlp
from livepuppet.engine.types import euler_to_matrix


def test_bins_to_degrees_peaks_and_range() -> None:
    logits = torch.full((3, 66), -1e4)
    logits[0, 0], logits[1, 65], logits[2, 32] = 0.0, 0.0, 0.0
    assert torch.allclose(bins_to_degrees(logits), torch.tensor([-97.5, 97.5, -1.5]))


def test_rotation_matrix_is_rz_ry_rx_transposed() -> None:
    pitch, yaw, roll = torch.tensor([10.0]), torch.tensor([-25.0]), torch.tensor([5.0])
    rot = rotation_matrix(pitch, yaw, roll)[0].numpy()
    assert np.allclose(rot @ rot.T, np.eye(3), atol=1e-6)
    r = np.radians
    rx = np.array([[1, 0, 0], [0, np.cos(r(10)), -np.sin(r(10))], [0, np.sin(r(10)), np.cos(r(10))]])
    ry = np.array([[np.cos(r(-25)), 0, np.sin(r(-25))], [0, 1, 0], [-np.sin(r(-25)), 0, np.cos(r(-25))]])
    rz = np.array([[np.cos(r(5)), -np.sin(r(5)), 0], [np.sin(r(5)), np.cos(r(5)), 0], [0, 0, 1]])
    assert np.allclose(rot, (rz @ ry @ rx).T, atol=1e-6)
    # pure yaw agrees with the engine's own convention (same axes, same sign)
    assert np.allclose(rotation_matrix(torch.zeros(1), torch.tensor([20.0]), torch.zeros(1))[0].numpy().T,
                       euler_to_matrix(20.0, 0.0, 0.0), atol=1e-6)


def test_transform_keypoints_scales_rotates_and_shifts_xy_only() -> None:
    kp = torch.tensor([[[0.1, 0.2, 0.3], [-0.2, 0.0, 0.1]]])
    rot = torch.eye(3).unsqueeze(0)
    exp = torch.full_like(kp, 0.01)
    out = transform_keypoints(kp, rot, exp, torch.tensor([[2.0]]), torch.tensor([[0.5, -0.5, 9.0]]))
    expected = (kp + 0.01) * 2.0 + torch.tensor([0.5, -0.5, 0.0])
    assert torch.allclose(out, expected)


def test_stitch_adds_delta_and_shared_xy_shift() -> None:
    mlp = RetargetingMlp(MlpParams(12, (8,), 8))
    for p in mlp.parameters():
        torch.nn.init.zeros_(p)
    torch.nn.init.constant_(mlp.mlp[-1].bias, 0.1)
    kp_s, kp_d = torch.zeros(1, 2, 3), torch.ones(1, 2, 3)
    out = stitch(mlp, kp_s, kp_d)
    assert torch.allclose(out[..., :2], torch.full((1, 2, 2), 1.2))  # delta 0.1 + shift 0.1
    assert torch.allclose(out[..., 2], torch.full((1, 2), 1.1))  # no shift in z
