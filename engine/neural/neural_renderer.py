"""The neural renderer: same call shape as :class:`~livepuppet.engine.render.mesh_renderer.MeshRenderer`.

Per portrait (once): the crop's feature volume and keypoints, its eye/lip opening ratios. Per frame: the
target's head motion is applied to the source keypoints relative to the source pose (rotation about the
canonical keypoints, scale, translation), the eye and lip MLPs add the target's openness relative to the
source's own, the stitching MLP keeps the face aligned with the fixed shoulders, then warp + generate.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import cv2
import numpy as np
import torch
from livepuppet.engine.clock import Clock, MonotonicClock
from livepuppet.engine.config import RenderConfig
from livepuppet.engine.neural.checkpoint import WHERE_HELP, load_checkpoint_dir
from livepuppet.engine.neural.keypoints import retarget_eyes, retarget_lips, stitch, transform_keypoints
from livepuppet.engine.neural.runtime import NeuralRuntime, RuntimeOptions
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.types import Target, euler_to_matrix
from livepuppet.errors import InputError

# MediaPipe face-mesh indices (upper lid, lower lid, corner, corner) per eye and the inner-lip gap / corners.
_EYE_R = (159, 145, 33, 133)
_EYE_L = (386, 374, 362, 263)
_LIPS = (13, 14, 61, 291)


def _ratio(landmarks: np.ndarray, idx: tuple[int, int, int, int]) -> float:
    """Distance ``a–b`` over distance ``c–d`` on the image plane (an opening relative to a width)."""
    p = landmarks[:, :2]
    return float(np.linalg.norm(p[idx[0]] - p[idx[1]])) / max(float(np.linalg.norm(p[idx[2]] - p[idx[3]])), 1e-6)


@functools.lru_cache(maxsize=2)
def shared_runtime(weights: str, device: str, half: bool, graph: str) -> NeuralRuntime:
    """Load a checkpoint directory once per (directory, device, precision, graph mode); sessions share it."""
    options = RuntimeOptions(device=device, half=half, channels_last=device.startswith("cuda"),
                             graph=graph)  # type: ignore[arg-type]
    return NeuralRuntime(load_checkpoint_dir(weights), options)


def runtime_for(config: RenderConfig) -> NeuralRuntime:
    """The shared runtime that ``config`` asks for (``render.weights``, ``render.device``)."""
    if not config.weights:
        raise InputError(f"render.renderer = 'neural' needs render.weights = DIR (--weights DIR): {WHERE_HELP}")
    cuda = config.device.startswith("cuda")
    return shared_runtime(config.weights, config.device, cuda, "cuda_graph" if cuda else "none")


def image_tensor(rgb: np.ndarray, size: int) -> torch.Tensor:
    """``(H, W, 3) u8 RGB`` → ``(1, 3, size, size) f32 [0,1]`` on the CPU."""
    img = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(255.0).unsqueeze(0)


class NeuralRenderer:
    """Per-portrait neural renderer; construct once per portrait (source features are cached). Not thread-safe."""

    def __init__(self, source: PreparedSource, config: RenderConfig, clock: Clock | None = None,
                 runtime: NeuralRuntime | None = None) -> None:
        self._clock = clock or MonotonicClock()
        self._config = config
        self._size = source.crop_size
        self.runtime = runtime or runtime_for(config)
        rt = self.runtime
        image = image_tensor(source.crop, rt.nets.arch.image_size)
        self.feature = rt.appearance(image)  # (1, 32, 16, 64, 64) on the device
        info = rt.motion(image)
        self._info = info
        self._rot_s = info.rotation()  # (1, 3, 3) row form
        self.kp_source = info.transformed()  # (1, K, 3) f32
        lm = source.landmarks
        eyes = (_ratio(lm, _EYE_L), _ratio(lm, _EYE_R))
        self._eye_src = eyes
        self._lip_src = _ratio(lm, _LIPS)
        self._mouth_width_iod = float(np.linalg.norm(lm[_LIPS[2], :2] - lm[_LIPS[3], :2]) / source.pose.scale)
        self._units_per_iod = 2.0 * source.pose.scale / source.crop_size  # keypoint space spans the crop as [-1, 1]
        with torch.inference_mode():
            self._eye_zero = retarget_eyes(rt.nets.eye, self.kp_source, self._eye_input(1.0, 1.0))
            self._lip_zero = retarget_lips(rt.nets.lip, self.kp_source, self._lip_input(0.0))

    def _eye_input(self, open_l: float, open_r: float) -> torch.Tensor:
        target = 0.5 * (self._eye_src[0] * open_l + self._eye_src[1] * open_r)
        return torch.tensor([[self._eye_src[0], self._eye_src[1], target]], device=self.runtime.device)

    def _lip_input(self, mouth_open: float) -> torch.Tensor:
        target = max(0.0, self._lip_src + mouth_open / max(self._mouth_width_iod, 1e-3))
        return torch.tensor([[self._lip_src, target]], device=self.runtime.device)

    @torch.inference_mode()
    def driving_keypoints(self, target: Target) -> torch.Tensor:
        """The driving keypoints ``(1, K, 3) f32`` for ``target`` (pose, eyes, lips, stitching applied)."""
        rt, info, head, ex = self.runtime, self._info, target.head, target.expression
        rel = torch.as_tensor(euler_to_matrix(head.yaw, head.pitch, head.roll).T, dtype=torch.float32,
                              device=rt.device).unsqueeze(0)  # row form of the image-axes rotation
        rot = rel @ self._rot_s  # relative rotation in canonical space, then the source pose
        scale = info.scale * float(head.scale)
        shift = torch.tensor([[head.tx * self._units_per_iod, head.ty * self._units_per_iod, 0.0]], device=rt.device)
        kp = transform_keypoints(info.kp, rot, info.exp, scale, info.t + shift)
        kp = kp + retarget_eyes(rt.nets.eye, self.kp_source, self._eye_input(ex.eye_open_l, ex.eye_open_r))
        kp = kp - self._eye_zero
        kp = kp + retarget_lips(rt.nets.lip, self.kp_source, self._lip_input(ex.mouth_open)) - self._lip_zero
        return stitch(rt.nets.stitching, self.kp_source, kp)

    def to_crop(self, image: torch.Tensor) -> np.ndarray:
        """``(3, 2S', 2S') [0,1]`` (512² for the published model) on the device → ``(S, S, 3) u8 RGB`` crop."""
        pixels = (image.float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        if pixels.shape[0] != self._size:
            pixels = cv2.resize(pixels, (self._size, self._size), interpolation=cv2.INTER_AREA)
        return pixels

    def crop_warp(self) -> None:
        """None: the generator draws pixels, not a map (the paste-back resamples its crop)."""
        return None

    def render(self, target: Target, steps: list[tuple[str, int]] | None = None) -> np.ndarray:
        """The animated crop ``(S, S, 3) u8 RGB`` for ``target``; appends step durations (ns) to ``steps``."""
        now = self._clock.now_ns
        t0 = now()
        kp_d = self.driving_keypoints(target)
        t1 = now()
        image = self.runtime.warp_decode(self.feature, self.kp_source, kp_d)[0]
        t2 = now()
        out = self.to_crop(image)
        if steps is not None:
            steps.extend((("keypoints", t1 - t0), ("warp_decode", t2 - t1), ("readback", now() - t2)))
        return out


def render_batch(renderers: Sequence[NeuralRenderer], targets: Sequence[Target]) -> list[np.ndarray]:
    """One batched warp + generate for frames of several sessions sharing one runtime → crops, in order."""
    if len(renderers) != len(targets):
        raise ValueError("render_batch needs one target per renderer")
    if not renderers:
        return []
    runtime = renderers[0].runtime
    if any(r.runtime is not runtime for r in renderers):
        raise ValueError("render_batch: all renderers must share one runtime")
    feature = torch.cat([r.feature for r in renderers])
    kp_s = torch.cat([r.kp_source for r in renderers])
    kp_d = torch.cat([r.driving_keypoints(t) for r, t in zip(renderers, targets, strict=True)])
    images = runtime.warp_decode(feature, kp_s, kp_d)
    return [r.to_crop(img) for r, img in zip(renderers, images, strict=True)]
