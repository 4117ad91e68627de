"""Distillation: a smaller student learns the teacher's outputs (≥ 10× lower loss), is saved as a checkpoint
directory that loads and renders like the teacher's, and exports to ONNX."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from livepuppet.engine.neural.arch import tiny_arch
from livepuppet.engine.neural.checkpoint import (
    LivePortraitNets,
    build_networks,
    load_checkpoint_dir,
    save_checkpoint_dir,
)
from livepuppet.export.distill import (
    DistillConfig,
    StudentConfig,
    _prepare,
    distill,
    inherit_weights,
    read_frames,
    save_student,
)
from livepuppet.export.onnx_export import export_onnx, graph_specs

pytestmark = [pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning:torch.onnx.*")]


SIZE = 32  # network input side of the tiny model (the smallest the ConvNeXt stem allows)
STUDENT = StudentConfig(warp_block_expansion=8, dense_block_expansion=4, dense_max_features=16, dense_num_blocks=2,
                        generator_middle_blocks=1, generator_out_channels=8, spade_hidden=16, inherit=False)


def _frames(portrait: np.ndarray, n: int = 6) -> np.ndarray:
    """Face crops of the real portrait, shifted a little per frame."""
    return np.stack([cv2.resize(portrait[20 + 8 * i:320 + 8 * i, 100 + 6 * i:400 + 6 * i], (SIZE, SIZE),
                                interpolation=cv2.INTER_AREA) for i in range(n)])


def _image_teacher(frames: np.ndarray, steps: int = 60) -> LivePortraitNets:
    """A tiny teacher whose outputs look like images (briefly fitted to reproduce the frames), as a real
    teacher's do; random weights alone give texture no small network matches quickly."""
    torch.manual_seed(0)
    arch = tiny_arch(SIZE, num_kp=4)
    arch = replace(arch, spade_generator_params=replace(arch.spade_generator_params, num_middle_blocks=2))
    teacher = build_networks(arch)
    feats, kps = _prepare(teacher, frames, torch.device("cpu"))
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
    target = F.interpolate(x, scale_factor=2, mode="bilinear")
    params = [*teacher.warping_module.parameters(), *teacher.spade_generator.parameters()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=3e-3)
    teacher.spade_generator.train()
    for _ in range(steps):
        idx = torch.randint(0, len(frames), (4,))
        out = teacher.spade_generator(teacher.warping_module(feats[idx], kps[idx], kps[idx]).out)
        loss = F.l1_loss(out, target[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return teacher.eval()


@pytest.mark.slow
def test_student_loss_drops_tenfold_and_student_exports(portrait, tmp_path: Path) -> None:
    frames = _frames(portrait)
    teacher = _image_teacher(frames)
    cfg = DistillConfig(steps=120, batch=4, lr=3e-3)
    result = distill(teacher, frames, STUDENT, cfg, quiet=True)
    assert result.initial_loss / result.final_loss >= 10.0, (result.initial_loss, result.final_loss)
    student = result.student
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(student.spade_generator) < count(teacher.spade_generator)
    assert count(student.warping_module) < count(teacher.warping_module)

    out = save_student(result, tmp_path / "student", STUDENT, cfg, teacher_dir="teacher")
    loaded = load_checkpoint_dir(out)  # selectable exactly like the teacher
    assert loaded.arch == student.arch
    graphs = {g.name: g for g in export_onnx(loaded, tmp_path / "onnx", quiet=True)}
    for name, module, inputs, in_names, _ in graph_specs(loaded):
        if name not in ("warping_module", "spade_generator"):
            continue
        got = ort.InferenceSession(str(graphs[name].path), providers=["CPUExecutionProvider"]).run(
            None, {k: v.numpy() for k, v in zip(in_names, inputs, strict=True)})
        with torch.no_grad():
            ref = module(*inputs)
        refs = ref if isinstance(ref, tuple) else (ref,)
        assert max(float(np.abs(r.numpy() - g).max()) for r, g in zip(refs, got, strict=True)) < 1e-4


def test_inherit_weights_copies_leading_slices() -> None:
    big, small = torch.nn.Conv2d(8, 6, 3), torch.nn.Conv2d(4, 3, 3)
    assert inherit_weights(small, big) == 2
    assert torch.equal(small.weight, big.weight[:3, :4])
    assert torch.equal(small.bias, big.bias[:3])


def test_read_frames_from_folder_and_video(portrait, tmp_path: Path) -> None:
    import av

    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), cv2.cvtColor(portrait, cv2.COLOR_RGB2BGR))
    frames = read_frames(tmp_path, SIZE)
    assert frames.shape == (3, SIZE, SIZE, 3) and frames.dtype == np.uint8
    video = tmp_path / "v.mp4"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(4):
            img = np.full((48, 64, 3), 40 * i, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    assert read_frames(video, SIZE).shape == (4, SIZE, SIZE, 3)


def test_cli_distill_writes_a_loadable_student(portrait, tmp_path: Path) -> None:
    from livepuppet.cli.main import main

    torch.manual_seed(0)
    weights = save_checkpoint_dir(build_networks(tiny_arch(SIZE, num_kp=4)), tmp_path / "teacher")
    for i, frame in enumerate(_frames(portrait, 3)):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), frame)
    code = main(["distill", "--weights", str(weights), "--frames", str(tmp_path), "-o", str(tmp_path / "s"),
                 "--steps", "2", "-q"])
    assert code == 0
    student = load_checkpoint_dir(tmp_path / "s").arch
    assert student.spade_generator_params.num_middle_blocks == 1  # never deeper than the tiny teacher
    assert student.warping_module_params.dense_motion_params.block_expansion == 8
    assert main(["distill", "--weights", str(weights), "--frames", str(tmp_path / "none"), "-o", "x", "-q"]) == 3
