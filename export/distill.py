"""Distillation: train a smaller warping module + generator (the per-frame cost) to match the teacher's
outputs on the user's own frames, and save it as a checkpoint directory selectable like the teacher.

The student shares the teacher's appearance and motion extractors and retargeting MLPs (run once per
portrait or cheap). Losses: pixel L1 on the generated images plus L1 on the dense motion (deformation grid,
occlusion map), which have the same shapes in both. No perceptual network is needed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from livepuppet.engine.neural.arch import NeuralArch
from livepuppet.engine.neural.checkpoint import LivePortraitNets, build_networks, save_checkpoint_dir
from livepuppet.engine.neural.keypoints import KeypointInfo
from livepuppet.engine.neural.spade_generator import SpadeGenerator
from livepuppet.engine.neural.warping import WarpingNetwork
from livepuppet.errors import InputError
from tqdm import tqdm

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclass(frozen=True, slots=True)
class StudentConfig:
    """How much smaller the student is (the teacher's values: 64, 32, 1024, 5, 6, 64, 128)."""

    warp_block_expansion: int = 32  # → warped feature width 4·32 = 128 (teacher 256)
    dense_block_expansion: int = 16
    dense_max_features: int = 256
    dense_num_blocks: int = 4
    generator_middle_blocks: int = 2
    generator_out_channels: int = 32
    spade_hidden: int = 64
    inherit: bool = True  # start from the teacher's weights, each tensor cut to the student's shape


@dataclass(frozen=True, slots=True)
class DistillConfig:
    """Training settings."""

    steps: int = 3000
    batch: int = 4
    lr: float = 2e-4
    motion_weight: float = 1.0  # weight of the deformation + occlusion L1 next to the pixel L1
    eval_pairs: int = 8
    seed: int = 0
    device: str = "cpu"


@dataclass(frozen=True, slots=True)
class DistillResult:
    """Losses on fixed evaluation pairs before and after training, the per-step training losses, the student."""

    initial_loss: float
    final_loss: float
    losses: tuple[float, ...]
    student: LivePortraitNets


def student_arch(teacher: NeuralArch, cfg: StudentConfig) -> NeuralArch:
    """The teacher's sizes with the student's narrower warping module and generator (never wider or deeper
    than the teacher's own: each size is the smaller of the two)."""
    w = teacher.warping_module_params
    t_dm = w.dense_motion_params
    dm = replace(t_dm, block_expansion=min(cfg.dense_block_expansion, t_dm.block_expansion),
                 max_features=min(cfg.dense_max_features, t_dm.max_features),
                 num_blocks=min(cfg.dense_num_blocks, t_dm.num_blocks))
    g = teacher.spade_generator_params
    width = min(cfg.warp_block_expansion, w.block_expansion)
    return replace(teacher,
                   warping_module_params=replace(w, block_expansion=width, dense_motion_params=dm),
                   spade_generator_params=replace(g, block_expansion=width,
                                                  num_middle_blocks=min(cfg.generator_middle_blocks,
                                                                        g.num_middle_blocks),
                                                  out_channels=min(cfg.generator_out_channels, g.out_channels),
                                                  spade_hidden=min(cfg.spade_hidden, g.spade_hidden)))


def make_student(teacher: LivePortraitNets, cfg: StudentConfig) -> LivePortraitNets:
    """A fresh student sharing the teacher's F, M and MLPs, with new (random) W and G."""
    arch = student_arch(teacher.arch, cfg)
    fresh = build_networks(replace(arch, motion_extractor_params=replace(arch.motion_extractor_params,
                                                                         depths=(1, 1, 1, 1))))
    if cfg.inherit:
        inherit_weights(fresh.warping_module, teacher.warping_module)
        inherit_weights(fresh.spade_generator, teacher.spade_generator)
    return LivePortraitNets(arch=arch, appearance_feature_extractor=teacher.appearance_feature_extractor,
                            motion_extractor=teacher.motion_extractor, warping_module=fresh.warping_module,
                            spade_generator=fresh.spade_generator, stitching=teacher.stitching, lip=teacher.lip,
                            eye=teacher.eye)


@torch.no_grad()
def inherit_weights(student: torch.nn.Module, teacher: torch.nn.Module) -> int:
    """Copy into every student tensor the leading slice of the same-named teacher tensor (weight inheritance:
    a narrower network starts from the teacher's first channels instead of noise); returns how many."""
    source = teacher.state_dict()
    copied = 0
    for name, tensor in student.state_dict().items():
        t = source.get(name)
        if t is None or t.dim() != tensor.dim() or any(a > b for a, b in zip(tensor.shape, t.shape, strict=True)):
            continue
        tensor.copy_(t[tuple(slice(0, n) for n in tensor.shape)])
        copied += 1
    return copied


def _square(rgb: np.ndarray, size: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    side = min(h, w)
    y, x = (h - side) // 2, (w - side) // 2
    return cv2.resize(rgb[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA)


def read_frames(path: str | Path, size: int, max_frames: int = 512) -> np.ndarray:
    """Frames ``(N, size, size, 3) u8 RGB`` from a video file or a folder of images (centre square crops;
    pass face crops, e.g. ``livepuppet`` crop outputs, for the best students)."""
    path = Path(path)
    frames: list[np.ndarray] = []
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:max_frames]
        for f in files:
            bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if bgr is not None:
                frames.append(_square(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size))
    elif path.is_file():
        import av

        try:
            with av.open(str(path)) as container:
                for frame in container.decode(video=0):
                    frames.append(_square(frame.to_ndarray(format="rgb24"), size))
                    if len(frames) >= max_frames:
                        break
        except av.error.FFmpegError as exc:
            raise InputError(f"cannot decode {path}: {exc}") from exc
    else:
        raise InputError(f"frames {str(path)!r} not found: pass a video file or a folder of images")
    if len(frames) < 2:
        raise InputError(f"{path} gave {len(frames)} frames; distillation needs at least 2 (more is better)")
    return np.stack(frames)


@torch.no_grad()
def _prepare(teacher: LivePortraitNets, frames: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher features ``(N, C, D, H, W)`` and posed keypoints ``(N, K, 3)`` of every frame."""
    feats, kps = [], []
    for i in range(0, len(frames), 8):
        x = torch.from_numpy(frames[i:i + 8]).permute(0, 3, 1, 2).float().div(255.0).to(device)
        feats.append(teacher.appearance_feature_extractor(x))
        kps.append(KeypointInfo.from_motion(teacher.motion_extractor(x)).transformed())
    return torch.cat(feats), torch.cat(kps)


def _loss(teacher: LivePortraitNets, warp: WarpingNetwork, gen: SpadeGenerator, feats: torch.Tensor,
          kps: torch.Tensor, src: torch.Tensor, drv: torch.Tensor, motion_weight: float) -> torch.Tensor:
    f, kp_s, kp_d = feats[src], kps[src], kps[drv]
    with torch.no_grad():
        tw = teacher.warping_module(f, kp_d, kp_s)
        target = teacher.spade_generator(tw.out)
    sw = warp(f, kp_d, kp_s)
    image = gen(sw.out)
    motion = F.l1_loss(sw.deformation, tw.deformation) + F.l1_loss(sw.occlusion_map, tw.occlusion_map)
    return F.l1_loss(image, target) + motion_weight * motion


def distill(teacher: LivePortraitNets, frames: np.ndarray, student_cfg: StudentConfig | None = None,
            cfg: DistillConfig | None = None, quiet: bool = False) -> DistillResult:
    """Train a student on ``frames (N, S, S, 3) u8`` (S = the model's image size) to match ``teacher``."""
    student_cfg, cfg = student_cfg or StudentConfig(), cfg or DistillConfig()
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed + 1)  # not the seed a test teacher may have been built with
    teacher = teacher.eval().to(device)
    student = make_student(teacher, student_cfg).to(device)
    feats, kps = _prepare(teacher, frames, device)
    n = len(frames)
    gen = torch.Generator().manual_seed(cfg.seed)
    eval_src = torch.randint(0, n, (cfg.eval_pairs,), generator=gen)
    eval_drv = torch.randint(0, n, (cfg.eval_pairs,), generator=gen)
    warp, spade = student.warping_module, student.spade_generator

    def evaluate() -> float:
        warp.eval(), spade.eval()
        with torch.no_grad():
            return float(_loss(teacher, warp, spade, feats, kps, eval_src, eval_drv, cfg.motion_weight))

    initial = evaluate()
    params = [*warp.parameters(), *spade.parameters()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / cfg.steps)))
    losses = []
    warp.eval()  # BatchNorm keeps its statistics fixed (small batches); its affine parameters still train
    spade.train()  # the generator has no BatchNorm; train mode runs the spectral norms' power iteration
    for _ in tqdm(range(cfg.steps), desc="distill", disable=quiet):
        src = torch.randint(0, n, (cfg.batch,), generator=gen)
        drv = torch.randint(0, n, (cfg.batch,), generator=gen)
        loss = _loss(teacher, warp, spade, feats, kps, src, drv, cfg.motion_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    final = evaluate()
    student.eval()
    return DistillResult(initial_loss=initial, final_loss=final, losses=tuple(losses), student=student)


def save_student(result: DistillResult, out_dir: str | Path, student_cfg: StudentConfig, cfg: DistillConfig,
                 teacher_dir: str = "") -> Path:
    """Write the student as a complete checkpoint directory (select it with ``render.weights``)."""
    extra: dict[str, object] = {"distilled_from": teacher_dir, "student": asdict(student_cfg),
                                "distill": asdict(cfg), "initial_loss": result.initial_loss,
                                "final_loss": result.final_loss}
    return save_checkpoint_dir(result.student.to("cpu"), out_dir, write_arch=True, extra=extra)
