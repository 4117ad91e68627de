"""The networks match the published checkpoints' state dicts and I/O shapes exactly (no weights needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from livepuppet.engine.neural.arch import NeuralArch, load_arch_json, save_arch_json, tiny_arch
from livepuppet.engine.neural.checkpoint import build_networks, state_dict_shapes
from livepuppet.engine.neural.sampling import grid_sample_3d_by_slices

SHAPES = json.loads((Path(__file__).parents[2] / "data" / "liveportrait_state_dict_shapes.json").read_text())


@pytest.fixture(scope="module")
def meta_nets():  # the full-size model with no storage: instant, exact shapes
    with torch.device("meta"):
        return build_networks()


def test_full_size_state_dicts_match_published_keys_and_shapes(meta_nets) -> None:
    ours = state_dict_shapes(meta_nets)
    published = {k: v for k, v in SHAPES.items() if not k.startswith("_") and k != "config"}
    assert set(ours) == set(published)
    for name, shapes in published.items():
        assert ours[name] == shapes, name
    assert sum(len(v) for v in ours.values()) == 626


def test_default_arch_is_the_published_config() -> None:
    cfg = SHAPES["config"]
    arch = NeuralArch.from_dict({k: v for k, v in cfg.items() if k != "stitching_retargeting_module_params"})
    assert arch == NeuralArch()
    s = cfg["stitching_retargeting_module_params"]
    assert NeuralArch().stitching_retargeting_module_params.eye.hidden_sizes == tuple(s["eye"]["hidden_sizes"])


def test_full_size_forward_gives_published_io_shapes(meta_nets) -> None:
    io = SHAPES["_io_shapes"]
    with torch.device("meta"):
        image = torch.empty(io["appearance_feature_extractor"]["in"])
        feature = meta_nets.appearance_feature_extractor(image)
        motion = meta_nets.motion_extractor(image)
        kp = torch.empty(io["warping_module"]["in"]["kp_source"])
        warp = meta_nets.warping_module(feature, kp, kp)
        out = meta_nets.spade_generator(warp.out)
    assert list(feature.shape) == io["appearance_feature_extractor"]["out"]
    for name, shape in io["motion_extractor"]["out"].items():
        assert list(getattr(motion, name).shape) == shape, name
    for name, shape in io["warping_module"]["out"].items():
        assert list(getattr(warp, name).shape) == shape, name
    assert list(out.shape) == io["spade_generator"]["out"]


def test_unknown_model_config_key_is_an_error(tmp_path: Path) -> None:
    from livepuppet.errors import InputError

    with pytest.raises(InputError, match="warping_module_params.oops"):
        NeuralArch.from_dict({"warping_module_params": {"oops": 1}})
    save_arch_json(tiny_arch(), tmp_path / "m.json")
    assert load_arch_json(tmp_path / "m.json") == tiny_arch()


@pytest.mark.parametrize("scale", [0.9, 1.3])  # 1.3: points outside the volume exercise zero padding
def test_sliced_sampler_equals_5d_grid_sample(scale: float) -> None:
    g = torch.Generator().manual_seed(0)
    volume = torch.randn(2, 3, 5, 7, 9, generator=g)
    grid = (torch.rand(2, 4, 6, 8, 3, generator=g) * 2 - 1) * scale
    ref = torch.nn.functional.grid_sample(volume, grid, align_corners=False)
    assert torch.allclose(grid_sample_3d_by_slices(volume, grid), ref, atol=1e-5)


def test_sliced_warping_module_matches_native() -> None:
    torch.manual_seed(0)
    nets = build_networks(tiny_arch(32))
    feature = torch.randn(2, 8, 4, 8, 8)
    kp = torch.rand(2, 21, 3) * 1.6 - 0.8
    native = nets.warping_module(feature, kp + 0.1, kp)
    nets.warping_module.set_sampler("slices")
    sliced = nets.warping_module(feature, kp + 0.1, kp)
    assert torch.allclose(native.out, sliced.out, atol=1e-4)
    assert torch.allclose(native.deformation, sliced.deformation, atol=1e-5)
