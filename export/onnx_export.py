"""ONNX export of each network (TorchScript exporter, opset 20: the first with a 5-D GridSample).

``sampler="slices"`` exports the warping module with the volumetric sampler decomposed into one 4-D
GridSample plus a weighted sum over depth (see :mod:`livepuppet.engine.neural.sampling`), which TensorRT's
4-D-only GridSample layer can build. Every graph has a dynamic batch axis.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from livepuppet.engine.neural.checkpoint import LivePortraitNets, feature_size
from livepuppet.engine.neural.motion_extractor import MOTION_OUTPUT_NAMES, MotionExtractor
from livepuppet.engine.neural.sampling import Sampler
from livepuppet.engine.neural.warping import WarpingNetwork
from livepuppet.errors import DependencyError
from torch import nn
from tqdm import tqdm

OPSET = 20
MANIFEST = "manifest.json"


@dataclass(frozen=True, slots=True)
class ExportedGraph:
    """One exported network: file, input/output names and the example input shapes used."""

    name: str
    path: Path
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    input_shapes: tuple[tuple[int, ...], ...]


class _MotionGraph(nn.Module):
    """Tuple outputs for the exporter."""

    def __init__(self, net: MotionExtractor) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.net(image).as_tuple()


class _WarpGraph(nn.Module):
    def __init__(self, net: WarpingNetwork) -> None:
        super().__init__()
        self.net = net

    def forward(self, feature_3d: torch.Tensor, kp_driving: torch.Tensor,
                kp_source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        w = self.net(feature_3d, kp_driving, kp_source)
        return w.occlusion_map, w.deformation, w.out


def graph_specs(nets: LivePortraitNets, batch: int = 1) -> list[tuple[str, nn.Module, tuple[torch.Tensor, ...],
                                                                     tuple[str, ...], tuple[str, ...]]]:
    """``(name, module, example inputs, input names, output names)`` for every network."""
    arch = nets.arch
    s, k = arch.image_size, arch.num_kp
    d, h, w = feature_size(arch)
    c = arch.appearance_feature_extractor_params.reshape_channel
    gen_in = nets.spade_generator.fc.in_channels
    image = torch.rand(batch, 3, s, s)
    kp = torch.rand(batch, k, 3) * 1.6 - 0.8
    mlps = arch.stitching_retargeting_module_params
    return [
        ("appearance_feature_extractor", nets.appearance_feature_extractor, (image,), ("image",), ("feature_3d",)),
        ("motion_extractor", _MotionGraph(nets.motion_extractor), (image,), ("image",), MOTION_OUTPUT_NAMES),
        ("warping_module", _WarpGraph(nets.warping_module),
         (torch.randn(batch, c, d, h, w), kp + 0.05 * torch.randn_like(kp), kp),
         ("feature_3d", "kp_driving", "kp_source"), ("occlusion_map", "deformation", "out")),
        ("spade_generator", nets.spade_generator, (torch.randn(batch, gen_in, h, w),), ("feature",), ("image",)),
        ("stitching", nets.stitching, (torch.randn(batch, mlps.stitching.input_size),), ("x",), ("delta",)),
        ("lip", nets.lip, (torch.randn(batch, mlps.lip.input_size),), ("x",), ("delta",)),
        ("eye", nets.eye, (torch.randn(batch, mlps.eye.input_size),), ("x",), ("delta",)),
    ]


def export_graph(module: nn.Module, inputs: tuple[torch.Tensor, ...], path: Path, input_names: tuple[str, ...],
                 output_names: tuple[str, ...]) -> None:
    """Export one module (CPU, fp32, eval) with a dynamic batch axis on every input and output."""
    axes = {name: {0: "batch"} for name in (*input_names, *output_names)}
    module = module.eval().float().cpu()
    with torch.no_grad():
        torch.onnx.export(module, inputs, str(path), input_names=list(input_names), output_names=list(output_names),
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False, do_constant_folding=True)


def export_onnx(nets: LivePortraitNets, out_dir: str | Path, sampler: Sampler = "native",
                only: tuple[str, ...] | None = None, quiet: bool = False) -> list[ExportedGraph]:
    """Export every network (or those named in ``only``) to ``out_dir/<name>.onnx``; the folder's manifest lists
    every graph exported there (a later sliced-warp export adds ``warping_module_slices.onnx``)."""
    try:
        import onnx  # noqa: F401  (the TorchScript exporter needs it)
    except ImportError as exc:
        raise DependencyError("ONNX export needs the onnx package: pip install 'livepuppet[export]'") from exc
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    previous = nets.warping_module.dense_motion_network.sampler
    nets.warping_module.set_sampler(sampler)
    done: list[ExportedGraph] = []
    try:
        specs = [s for s in graph_specs(nets) if only is None or s[0] in only]
        for name, module, inputs, in_names, out_names in tqdm(specs, desc="export onnx", disable=quiet):
            suffix = "_slices" if name == "warping_module" and sampler == "slices" else ""
            path = out / f"{name}{suffix}.onnx"
            export_graph(module, inputs, path, in_names, out_names)
            done.append(ExportedGraph(name, path, in_names, out_names, tuple(tuple(t.shape) for t in inputs)))
    finally:
        nets.warping_module.set_sampler(previous)
    entries = {g["file"]: g for g in _read_manifest(out).get("graphs", [])}  # earlier exports to this folder
    for g in done:
        entries[g.path.name] = {"name": g.name, "file": g.path.name, "inputs": list(g.inputs),
                                "outputs": list(g.outputs), "input_shapes": [list(s) for s in g.input_shapes]}
    graphs = sorted(entries.values(), key=lambda e: str(e["file"]))
    manifest = {"opset": OPSET, "config": nets.arch.to_dict(), "graphs": graphs}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return done


def _read_manifest(out: Path) -> dict:
    path = out / MANIFEST
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}
