"""Neural renderer benchmark: per-network and per-frame milliseconds at several batch sizes, variants compared
in one process.

What: random weights of the published architecture (or ``--tiny``), fp16 on CUDA (fp32 on the CPU), per batch
(``--batches``, default 1 4 8):

* per network (eager, cached helpers): motion extractor (always fp32), the three MLPs (eye, lip, stitching),
  warping module, SPADE generator;
* per frame (motion extractor + MLPs + warp + generate, the work of one driving frame) for the variants:
  ``eager plain`` (helper grids rebuilt on the host every call, as the published code does), ``eager cached``
  (helpers made once on the device, channels-last), ``cuda graph`` (warp + generate captured per batch size),
  ``compile`` (``torch.compile(mode="reduce-overhead")``), ``student`` (the default distilled size, CUDA graph).

Times are medians of ``--iters`` runs after ``--warmup`` (CUDA synchronized around each run). Frames/s =
batch · 1000 / ms. The device name is stored with the results (printed table + JSON under bench/results/).

Run: ``python bench/bench_neural.py [--batches 1 4 8] [--iters 50] [--no-compile] [--json PATH]``;
``--dry-run`` runs a tiny configuration once on the CPU (exercised by the tests).
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from livepuppet.engine.neural.arch import NeuralArch, tiny_arch
from livepuppet.engine.neural.checkpoint import LivePortraitNets, build_networks, feature_size
from livepuppet.engine.neural.keypoints import retarget_eyes, retarget_lips, stitch
from livepuppet.engine.neural.runtime import NeuralRuntime, RuntimeOptions
from livepuppet.export.distill import StudentConfig, make_student

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "neural.json"


def timed(fn: Callable[[], object], iters: int, warmup: int, cuda: bool) -> float:
    """Median wall milliseconds of ``fn``."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(iters):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        samples.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(samples)


class Case:
    """Random inputs of one batch size on the device for one runtime."""

    def __init__(self, rt: NeuralRuntime, batch: int) -> None:
        arch = rt.nets.arch
        dev, dtype = rt.device, rt.options.dtype
        c = arch.appearance_feature_extractor_params.reshape_channel
        self.rt = rt
        self.image = torch.rand(batch, 3, arch.image_size, arch.image_size, device=dev)
        self.feature = torch.randn(batch, c, *feature_size(arch), device=dev, dtype=dtype)
        self.kp_s = torch.rand(batch, arch.num_kp, 3, device=dev) * 1.6 - 0.8
        self.eye = torch.rand(batch, 3, device=dev)
        self.lip = torch.rand(batch, 2, device=dev)
        self.gen_in = torch.randn(batch, rt.nets.spade_generator.fc.in_channels, *feature_size(arch)[1:],
                                  device=dev, dtype=dtype)

    def mlps(self, kp_d: torch.Tensor) -> torch.Tensor:
        n = self.rt.nets
        kp = kp_d + retarget_eyes(n.eye, self.kp_s, self.eye) + retarget_lips(n.lip, self.kp_s, self.lip)
        return stitch(n.stitching, self.kp_s, kp)

    @torch.inference_mode()
    def frame(self) -> torch.Tensor:
        kp_d = self.mlps(self.rt.motion(self.image).transformed())
        return self.rt.warp_decode(self.feature, self.kp_s, kp_d)

    @torch.inference_mode()
    def networks(self) -> dict[str, Callable[[], object]]:
        n, dtype = self.rt.nets, self.rt.options.dtype
        kp_d = self.kp_s.to(dtype) + 0.01

        def warp() -> object:
            with torch.inference_mode():
                return n.warping_module(self.feature, kp_d, self.kp_s.to(dtype))

        def gen() -> object:
            with torch.inference_mode():
                return n.spade_generator(self.gen_in)

        def motion() -> object:
            with torch.inference_mode():
                return self.rt.motion(self.image)

        def mlps() -> object:
            with torch.inference_mode():
                return self.mlps(self.kp_s)

        return {"motion_extractor": motion, "retargeting_mlps": mlps, "warping_module": warp, "spade_generator": gen}


def runtime(nets: LivePortraitNets, device: str, graph: str, plain: bool = False) -> NeuralRuntime:
    cuda = device.startswith("cuda")
    nets.warping_module.dense_motion_network.rebuild_helpers = plain
    options = RuntimeOptions(device=device, half=cuda, channels_last=cuda and not plain, graph=graph)  # type: ignore[arg-type]
    return NeuralRuntime(nets, options)


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = args.device
    cuda = device.startswith("cuda")
    arch = (tiny_arch(32) if args.dry_run else tiny_arch()) if args.tiny else NeuralArch()
    torch.manual_seed(0)
    teacher = build_networks(arch)
    plain_nets = copy.deepcopy(teacher)  # before any runtime touches the teacher (no channels-last weights)
    student = make_student(teacher, StudentConfig() if not args.tiny else StudentConfig(
        warp_block_expansion=4, dense_block_expansion=4, dense_max_features=16, dense_num_blocks=2,
        generator_middle_blocks=0, generator_out_channels=4, spade_hidden=8))
    variants: list[tuple[str, Callable[[], NeuralRuntime]]] = [
        ("eager plain", lambda: runtime(plain_nets, device, "none", plain=True)),
        ("eager cached", lambda: runtime(teacher, device, "none")),
    ]
    if cuda:
        variants.append(("cuda graph", lambda: runtime(teacher, device, "cuda_graph")))
        if args.compile:
            variants.append(("compile", lambda: runtime(teacher, device, "compile")))
    variants.append(("student", lambda: runtime(student, device, "cuda_graph" if cuda else "none")))
    results: dict[str, Any] = {"device": torch.cuda.get_device_name() if cuda else platform.processor() or "cpu",
                               "torch": torch.__version__, "tiny": args.tiny, "iters": args.iters,
                               "per_network_ms": {}, "per_frame_ms": {}}
    rt = runtime(teacher, device, "none")
    for b in args.batches:
        case = Case(rt, b)
        results["per_network_ms"][str(b)] = {k: timed(fn, args.iters, args.warmup, cuda)
                                             for k, fn in case.networks().items()}
    for name, make in variants:
        rt = make()
        results["per_frame_ms"][name] = {}
        for b in args.batches:
            case = Case(rt, b)
            t0 = time.perf_counter()
            case.frame()  # first call: capture / compile
            first = (time.perf_counter() - t0) * 1000.0
            ms = timed(case.frame, args.iters, args.warmup, cuda)
            results["per_frame_ms"][name][str(b)] = {"ms": ms, "fps": b * 1000.0 / ms, "first_call_ms": first}
    return results


def print_table(results: dict[str, Any]) -> None:
    print(f"device: {results['device']}  torch {results['torch']}  tiny={results['tiny']}")
    batches = list(results["per_network_ms"])
    print(f"{'per network (ms)':<22}" + "".join(f"{'b=' + b:>12}" for b in batches))
    for name in next(iter(results["per_network_ms"].values())):
        print(f"{name:<22}" + "".join(f"{results['per_network_ms'][b][name]:>12.2f}" for b in batches))
    print(f"{'per frame ms (fps)':<22}" + "".join(f"{'b=' + b:>18}" for b in batches))
    for name, row in results["per_frame_ms"].items():
        print(f"{name:<22}" + "".join(f"{row[b]['ms']:>9.2f} ({row[b]['fps']:>5.0f})" for b in batches))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--tiny", action="store_true", help="tiny architecture (CPU smoke runs)")
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="skip the torch.compile variant")
    parser.add_argument("--dry-run", action="store_true", help="tiny, CPU, batch 1 and 2, one iteration")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    if args.dry_run:
        args.device, args.tiny, args.batches, args.iters, args.warmup, args.compile = "cpu", True, [1, 2], 1, 0, False
    elif not args.device.startswith("cuda"):
        args.tiny = True  # the full model on a CPU takes seconds per frame: nothing to learn there
    results = run(args)
    print_table(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
