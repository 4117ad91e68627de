"""TensorRT engines from the exported ONNX graphs, through the ``tensorrt`` Python API (optional dependency).

TensorRT's GridSample layer is 4-D only, so the warping module is built from its ``*_slices.onnx`` variant
(the volumetric sample decomposed into a 4-D GridSample and a weighted depth sum, exact up to rounding). The
motion extractor is built in fp32 (it overflows in fp16); the others in fp16 when asked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livepuppet.errors import DependencyError, InputError
from livepuppet.export.onnx_export import MANIFEST
from tqdm import tqdm

FP32_ONLY = ("motion_extractor",)
TRT_HELP = ("TensorRT is not installed: on a machine with an NVIDIA GPU run `pip install tensorrt` (10.x, matching "
            "its CUDA), then rerun `livepuppet export --trt`; the ONNX files were written either way")


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """One engine to build: source ONNX, output plan file, precision and the batch range of its profile."""

    name: str
    onnx_path: Path
    engine_path: Path
    fp16: bool
    input_shapes: dict[str, tuple[int, ...]]
    max_batch: int = 8


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or a :class:`DependencyError` that says how to install it."""
    try:
        import tensorrt
    except ImportError as exc:
        raise DependencyError(TRT_HELP) from exc
    return tensorrt


def plan_engines(onnx_dir: str | Path, fp16: bool = True, max_batch: int = 8) -> list[EngineSpec]:
    """Read the export manifest and choose, per network, the ONNX file TensorRT can build (``slices`` warp)."""
    onnx_dir = Path(onnx_dir)
    manifest_path = onnx_dir / MANIFEST
    if not manifest_path.is_file():
        raise InputError(f"{manifest_path} not found: run `livepuppet export` first")
    manifest = json.loads(manifest_path.read_text())
    graphs: dict[str, dict] = {}
    for graph in manifest["graphs"]:  # one per network; for the warp, the 4-D sampler variant
        if graph["name"] not in graphs or graph["file"].endswith("_slices.onnx"):
            graphs[graph["name"]] = graph
    specs = []
    for name, graph in graphs.items():
        if name == "warping_module" and not graph["file"].endswith("_slices.onnx"):
            raise InputError(f"{onnx_dir / 'warping_module_slices.onnx'} not found: TensorRT needs the 4-D sampler "
                             "variant (`livepuppet export --trt` writes it)")
        shapes = {n: tuple(s) for n, s in zip(graph["inputs"], graph["input_shapes"], strict=True)}
        specs.append(EngineSpec(name, onnx_dir / graph["file"], onnx_dir / f"{name}.engine",
                                fp16 and name not in FP32_ONLY, shapes, max_batch))
    return specs


def build_engine(spec: EngineSpec, workspace_gib: float = 4.0) -> Path:
    """Parse ``spec.onnx_path``, build a serialized engine with a batch 1..max_batch profile, write it."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(spec.onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise InputError(f"TensorRT cannot parse {spec.onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if spec.fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for name, shape in spec.input_shapes.items():
        rest = tuple(shape[1:])
        profile.set_shape(name, (1, *rest), (1, *rest), (spec.max_batch, *rest))
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise InputError(f"TensorRT failed to build {spec.name} from {spec.onnx_path} (see its log above)")
    spec.engine_path.write_bytes(bytes(plan))
    return spec.engine_path


def build_engines(onnx_dir: str | Path, fp16: bool = True, max_batch: int = 8, quiet: bool = False) -> list[Path]:
    """Build every engine listed in the export manifest; checks for TensorRT before any work."""
    import_tensorrt()
    specs = plan_engines(onnx_dir, fp16, max_batch)
    return [build_engine(s) for s in tqdm(specs, desc="build tensorrt", disable=quiet)]
