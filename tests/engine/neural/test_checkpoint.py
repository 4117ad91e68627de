"""Loading a checkpoint directory: round trip, released layout, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from livepuppet.engine.neural.arch import tiny_arch
from livepuppet.engine.neural.checkpoint import (
    MODEL_JSON,
    NETWORK_FILES,
    STITCHING_FILE,
    build_networks,
    load_checkpoint_dir,
    save_checkpoint_dir,
)
from livepuppet.errors import InputError


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return save_checkpoint_dir(build_networks(tiny_arch(32)), tmp_path_factory.mktemp("tiny"))


def test_round_trip_loads_identical_weights(tiny_dir: Path) -> None:
    torch.manual_seed(0)
    ref = build_networks(tiny_arch(32))
    nets = load_checkpoint_dir(tiny_dir)
    assert nets.arch == tiny_arch(32)
    for (name, a), (_, b) in zip(ref.named_networks(), nets.named_networks(), strict=True):
        for key, value in a.state_dict().items():
            assert torch.equal(value, b.state_dict()[key]), f"{name}.{key}"


def test_released_layout_with_subfolders_and_ddp_prefix(tmp_path: Path) -> None:
    """Files in base_models/ + retargeting_models/, MLP keys prefixed ``module.`` as in the release."""
    torch.manual_seed(1)
    nets = build_networks(tiny_arch(32))
    (tmp_path / "base_models").mkdir()
    (tmp_path / "retargeting_models").mkdir()
    for name, filename in NETWORK_FILES.items():
        torch.save(getattr(nets, name).state_dict(), tmp_path / "base_models" / filename)
    bundle = {key: {f"module.{k}": v for k, v in getattr(nets, attr).state_dict().items()}
              for attr, key in (("stitching", "retarget_shoulder"), ("lip", "retarget_mouth"), ("eye", "retarget_eye"))}
    torch.save(bundle, tmp_path / "retargeting_models" / STITCHING_FILE)
    save_checkpoint_dir(nets, tmp_path / "unused")  # only to reuse its JSON writer
    (tmp_path / MODEL_JSON).write_text((tmp_path / "unused" / MODEL_JSON).read_text())
    loaded = load_checkpoint_dir(tmp_path)
    assert torch.equal(loaded.eye.mlp[0].weight, nets.eye.mlp[0].weight)


def test_missing_file_names_it_and_says_where(tiny_dir: Path, tmp_path: Path) -> None:
    for f in tiny_dir.iterdir():
        if f.name != "warping_module.pth":
            (tmp_path / f.name).write_bytes(f.read_bytes())
    with pytest.raises(InputError, match=r"missing warping_module\.pth in .*base_models/"):
        load_checkpoint_dir(tmp_path)
    with pytest.raises(InputError, match="not found"):
        load_checkpoint_dir(tmp_path / "nope")


def test_mismatched_shapes_are_rejected(tiny_dir: Path, tmp_path: Path) -> None:
    """Tiny files without their JSON are read as the published model: every key's shape is wrong."""
    for f in tiny_dir.iterdir():
        if f.name != MODEL_JSON:
            (tmp_path / f.name).write_bytes(f.read_bytes())
    with pytest.raises(InputError, match="does not match this model: .*shape mismatches"):
        load_checkpoint_dir(tmp_path)
