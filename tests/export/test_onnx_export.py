"""ONNX export: torch ↔ onnxruntime parity for every network, the TensorRT-friendly warp variant, the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from livepuppet.engine.neural.arch import tiny_arch
from livepuppet.engine.neural.checkpoint import build_networks, save_checkpoint_dir
from livepuppet.errors import DependencyError, InputError
from livepuppet.export.onnx_export import export_onnx, graph_specs
from livepuppet.export.tensorrt_build import import_tensorrt, plan_engines

pytestmark = [pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning:torch.onnx.*")]



@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return build_networks(tiny_arch(32))


def _parity(nets, graphs, batch: int) -> dict[str, float]:
    errors = {}
    by_name = {g.name: g for g in graphs}
    for name, module, inputs, in_names, _ in graph_specs(nets, batch=batch):
        session = ort.InferenceSession(str(by_name[name].path), providers=["CPUExecutionProvider"])
        got = session.run(None, {k: v.numpy() for k, v in zip(in_names, inputs, strict=True)})
        with torch.no_grad():
            ref = module(*inputs)
        refs = ref if isinstance(ref, tuple) else (ref,)
        errors[name] = max(float(np.abs(r.numpy() - g).max()) for r, g in zip(refs, got, strict=True))
    return errors


@pytest.mark.parametrize("sampler", ["native", "slices"])
def test_every_network_matches_onnxruntime(nets, tmp_path: Path, sampler: str) -> None:
    graphs = export_onnx(nets, tmp_path, sampler=sampler, quiet=True)
    assert {g.name for g in graphs} == {"appearance_feature_extractor", "motion_extractor", "warping_module",
                                        "spade_generator", "stitching", "lip", "eye"}
    errors = _parity(nets, graphs, batch=2)  # exported at batch 1: the batch axis is dynamic
    assert max(errors.values()) < 1e-4, errors
    assert (tmp_path / "manifest.json").is_file()


def test_sliced_warp_graph_has_only_4d_grid_samples(nets, tmp_path: Path) -> None:
    def grid_sample_ranks(path: Path) -> list[int]:
        model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
        ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in (*model.graph.value_info, *model.graph.input)}
        return [ranks[n.input[0]] for n in model.graph.node if n.op_type == "GridSample"]

    native = export_onnx(nets, tmp_path / "n", only=("warping_module",), quiet=True)[0]
    sliced = export_onnx(nets, tmp_path / "s", sampler="slices", only=("warping_module",), quiet=True)[0]
    assert 5 in grid_sample_ranks(native.path)
    assert grid_sample_ranks(sliced.path) and set(grid_sample_ranks(sliced.path)) == {4}
    assert sliced.path.name == "warping_module_slices.onnx"


def test_tensorrt_missing_is_a_clear_error(tmp_path: Path) -> None:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(DependencyError, match="pip install tensorrt"):
            import_tensorrt()
    with pytest.raises(InputError, match="livepuppet export"):
        plan_engines(tmp_path)


def test_engine_plan_uses_sliced_warp_and_fp32_motion(nets, tmp_path: Path) -> None:
    export_onnx(nets, tmp_path, sampler="slices", only=("warping_module",), quiet=True)
    export_onnx(nets, tmp_path, only=("warping_module", "motion_extractor"), quiet=True)
    plan = plan_engines(tmp_path, fp16=True)
    assert len(plan) == 2  # the manifest lists both warp variants; one engine per network
    specs = {s.name: s for s in plan}
    assert specs["warping_module"].onnx_path.name == "warping_module_slices.onnx"
    assert specs["warping_module"].fp16 and not specs["motion_extractor"].fp16
    assert specs["warping_module"].input_shapes["feature_3d"] == (1, 8, 4, 8, 8)


@pytest.mark.slow
def test_full_size_warping_module_matches_onnxruntime(tmp_path: Path) -> None:
    """The published-size warping network (every weight full size) exports and matches; the feature volume is
    16×32×32 instead of 16×64×64 (the network is convolutional) to keep CI fast."""
    from livepuppet.engine.neural.arch import NeuralArch
    from livepuppet.engine.neural.checkpoint import feature_size
    from livepuppet.engine.neural.warping import WarpingNetwork
    from livepuppet.export.onnx_export import _WarpGraph, export_graph

    torch.manual_seed(0)
    arch = NeuralArch()
    module = _WarpGraph(WarpingNetwork(arch.warping_module_params, (16, 32, 32)).eval())
    assert feature_size(arch) == (16, 64, 64)
    kp = torch.rand(1, 21, 3) * 1.6 - 0.8
    inputs = (torch.randn(1, 32, 16, 32, 32), kp + 0.05, kp)
    path = tmp_path / "warp.onnx"
    names = ("feature_3d", "kp_driving", "kp_source")
    export_graph(module, inputs, path, names, ("occlusion_map", "deformation", "out"))
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {k: v.numpy() for k, v in zip(names, inputs, strict=True)})
    with torch.no_grad():
        ref = module(*inputs)
    for r, g in zip(ref, got, strict=True):
        assert np.abs(r.numpy() - g).max() < 1e-3


def test_cli_export_writes_graphs(nets, tmp_path: Path) -> None:
    from livepuppet.cli.main import main

    weights = save_checkpoint_dir(nets, tmp_path / "w")
    assert main(["export", "--weights", str(weights), "-o", str(tmp_path / "onnx"), "-q"]) == 0
    assert len(list((tmp_path / "onnx").glob("*.onnx"))) == 7
    assert main(["export", "--weights", str(tmp_path / "missing"), "-o", str(tmp_path / "x"), "-q"]) == 3
