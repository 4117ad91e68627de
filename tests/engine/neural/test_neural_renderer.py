"""The neural renderer in the pipeline (random tiny weights): call shape, motion control, batching, errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from livepuppet.engine.config import ConfigError, EngineConfig, load_config
from livepuppet.engine.neural.arch import tiny_arch
from livepuppet.engine.neural.checkpoint import build_networks, save_checkpoint_dir
from livepuppet.engine.neural.keypoints import stitch
from livepuppet.engine.neural.neural_renderer import NeuralRenderer, render_batch
from livepuppet.engine.neural.runtime import NeuralRuntime, RuntimeOptions
from livepuppet.engine.pipeline import Animator
from livepuppet.engine.types import Expression, HeadMotion, Motion, Target


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return save_checkpoint_dir(build_networks(tiny_arch(64)), tmp_path_factory.mktemp("w"))


@pytest.fixture(scope="module")
def neural_config(weights: Path) -> EngineConfig:
    return load_config(overrides=["render.renderer=neural", f"render.weights={weights}"])


def _target(prepared, head: HeadMotion | None = None, ex: Expression | None = None) -> Target:
    return Target(pts=0, seq=0, landmarks=prepared.landmarks.astype(np.float32), expression=ex or Expression(),
                  head=head or HeadMotion())


def test_animator_renders_crop_and_full_frame(prepared, neural_config: EngineConfig) -> None:
    animator = Animator(prepared, neural_config)
    frame = animator.animate(Motion(pts=5, seq=3, head=HeadMotion(), expression=Expression()))
    assert frame.crop.pixels.shape == (prepared.crop_size, prepared.crop_size, 3)
    assert frame.crop.pixels.dtype == np.uint8
    assert frame.full is not None and frame.full.pixels.shape == prepared.image.shape
    assert (frame.crop.pts, frame.crop.seq) == (5, 3)


def test_neutral_target_keeps_source_keypoints_and_motion_moves_them(prepared, neural_config) -> None:
    r = NeuralRenderer(prepared, neural_config.render)
    nets = r.runtime.nets
    neutral = r.driving_keypoints(_target(prepared))
    assert torch.allclose(neutral, stitch(nets.stitching, r.kp_source, r.kp_source), atol=1e-5)
    turned = r.driving_keypoints(_target(prepared, head=HeadMotion(yaw=20.0)))
    eyes = r.driving_keypoints(_target(prepared, ex=Expression(eye_open_l=0.0, eye_open_r=0.0)))
    mouth = r.driving_keypoints(_target(prepared, ex=Expression(mouth_open=0.3)))
    for moved in (turned, eyes, mouth):
        assert (moved - neutral).abs().max() > 1e-4


def test_render_is_deterministic_and_batch_equals_singles(prepared, neural_config) -> None:
    rt = NeuralRuntime(build_networks(tiny_arch(64)), RuntimeOptions())
    a = NeuralRenderer(prepared, neural_config.render, runtime=rt)
    b = NeuralRenderer(prepared, neural_config.render, runtime=rt)
    targets = [_target(prepared, head=HeadMotion(yaw=10.0)), _target(prepared, ex=Expression(mouth_open=0.2))]
    singles = [a.render(targets[0]), b.render(targets[1])]
    assert np.array_equal(a.render(targets[0]), singles[0])
    batch = render_batch([a, b], targets)
    for one, many in zip(singles, batch, strict=True):
        assert np.abs(one.astype(int) - many).max() <= 1


def test_neural_without_weights_says_what_to_do(prepared) -> None:
    from livepuppet.errors import InputError

    cfg = load_config("gpu-quality", ["render.device=cpu"])
    assert cfg.render.renderer == "neural"
    with pytest.raises(InputError, match=r"render.weights = DIR .*stitching_retargeting_module.pth"):
        Animator(prepared, cfg)
    with pytest.raises(ConfigError, match="'mesh' or 'neural'"):
        load_config(overrides=["render.renderer=nerf"])


def test_missing_weights_directory_is_an_input_error(prepared, tmp_path: Path) -> None:
    from livepuppet.errors import InputError

    cfg = load_config(overrides=["render.renderer=neural", f"render.weights={tmp_path / 'none'}"])
    with pytest.raises(InputError, match="appearance_feature_extractor.pth"):
        Animator(prepared, replace(cfg))


def test_mesh_pipeline_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, livepuppet.engine.pipeline, livepuppet.cli.main; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_channels_last_runtime_equals_default_and_graph_needs_cuda() -> None:
    torch.manual_seed(0)
    plain = NeuralRuntime(build_networks(tiny_arch(32)), RuntimeOptions())
    torch.manual_seed(0)
    fast = NeuralRuntime(build_networks(tiny_arch(32)), RuntimeOptions(channels_last=True))
    image = torch.rand(2, 3, 32, 32)
    feature = plain.appearance(image)
    assert torch.allclose(fast.appearance(image), feature, atol=1e-5)
    kp_s = plain.motion(image).transformed()
    kp_d = kp_s + 0.05
    assert torch.allclose(fast.warp_decode(feature, kp_s, kp_d), plain.warp_decode(feature, kp_s, kp_d), atol=1e-5)
    with pytest.raises(ValueError, match="CUDA"):
        RuntimeOptions(graph="cuda_graph")
