"""``livepuppet export`` and ``livepuppet distill``: the neural renderer's ONNX/TensorRT export and distillation."""

from __future__ import annotations

import argparse
from pathlib import Path

from livepuppet.errors import InputError


def _add(parser: argparse.ArgumentParser, common: argparse.ArgumentParser, flag: str, **kwargs: object) -> None:
    """Add ``flag`` unless the common parser (a parent) already defines it, e.g. a global ``--weights``."""
    if flag not in common._option_string_actions:  # argparse has no public lookup
        parser.add_argument(flag, **kwargs)  # type: ignore[arg-type]


def _weights(args: argparse.Namespace) -> str:
    weights = getattr(args, "weights", None)
    if not weights:
        raise InputError("--weights DIR is required: the directory of LivePortrait checkpoints (or a student)")
    return str(weights)


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the ``export`` and ``distill`` subcommands."""
    export = sub.add_parser("export", parents=[common], help="export the neural renderer to ONNX (and TensorRT)")
    _add(export, common, "--weights", help="directory of LivePortrait checkpoints (or a student)")
    export.add_argument("-o", "--output", required=True, help="output directory for .onnx/.engine files")
    export.add_argument("--trt", action="store_true", help="also build TensorRT engines (needs tensorrt and a GPU)")
    export.add_argument("--fp16", action="store_true", help="TensorRT engines in fp16 (motion extractor stays fp32)")
    export.add_argument("--max-batch", type=int, default=8, help="largest batch of the TensorRT profiles")
    export.set_defaults(func=cmd_export)

    distill = sub.add_parser("distill", parents=[common], help="distill a smaller, faster neural renderer")
    _add(distill, common, "--weights", help="the teacher: directory of LivePortrait checkpoints")
    distill.add_argument("--frames", required=True, help="a video file or a folder of face images")
    distill.add_argument("-o", "--output", required=True, help="student directory (use it as --weights later)")
    distill.add_argument("--steps", type=int, default=3000)
    distill.add_argument("--batch", type=int, default=4)
    distill.add_argument("--lr", type=float, default=2e-4)
    _add(distill, common, "--device", default="cpu", help="cpu or cuda")
    distill.add_argument("--max-frames", type=int, default=512)
    distill.set_defaults(func=cmd_distill)


def cmd_export(args: argparse.Namespace) -> int:
    from livepuppet.engine.neural.checkpoint import load_checkpoint_dir
    from livepuppet.export.onnx_export import export_onnx

    quiet = bool(getattr(args, "quiet", False))
    nets = load_checkpoint_dir(_weights(args))
    graphs = export_onnx(nets, args.output, quiet=quiet)
    if args.trt:
        from livepuppet.export.tensorrt_build import build_engines, import_tensorrt

        import_tensorrt()  # fail before the second export if TensorRT is missing
        export_onnx(nets, args.output, sampler="slices", only=("warping_module",), quiet=quiet)
        engines = build_engines(args.output, fp16=args.fp16, max_batch=args.max_batch, quiet=quiet)
        print(f"wrote {len(engines)} TensorRT engines to {args.output}")
    print(f"wrote {len(graphs)} ONNX graphs to {args.output}")
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from livepuppet.engine.neural.checkpoint import load_checkpoint_dir
    from livepuppet.export.distill import DistillConfig, StudentConfig, distill, read_frames, save_student

    if args.steps < 1:
        raise InputError("--steps must be at least 1")
    teacher = load_checkpoint_dir(_weights(args))
    frames = read_frames(args.frames, teacher.arch.image_size, args.max_frames)
    student_cfg = StudentConfig()
    cfg = DistillConfig(steps=args.steps, batch=args.batch, lr=args.lr, device=getattr(args, "device", None) or "cpu")
    result = distill(teacher, frames, student_cfg, cfg, quiet=bool(getattr(args, "quiet", False)))
    out = save_student(result, Path(args.output), student_cfg, cfg, teacher_dir=_weights(args))
    print(f"student written to {out}: loss {result.initial_loss:.4f} → {result.final_loss:.4f} "
          f"({len(frames)} frames, {args.steps} steps); use it with --set render.weights={out}")
    return 0
