"""The loaded model on one device: fp16 / channels-last / CUDA-graph or torch.compile fast paths, batched.

One :class:`NeuralRuntime` is built per device (``load()``-style: weights, casts, capture) and shared by every
portrait and session; :meth:`NeuralRuntime.warp_decode` takes the frames of several sessions in one batch.
The motion extractor always runs in fp32 (it overflows in fp16); F, W and G run in ``options.dtype``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from livepuppet.engine.neural.checkpoint import LivePortraitNets
from livepuppet.engine.neural.keypoints import KeypointInfo
from torch import nn

GraphMode = Literal["none", "cuda_graph", "compile"]


@dataclass(frozen=True, slots=True)
class RuntimeOptions:
    """How to run: device, fp16 for F/W/G, channels-last layouts, and the per-frame graph mode."""

    device: str = "cpu"
    half: bool = False
    channels_last: bool = False
    graph: GraphMode = "none"  # cuda_graph: one captured graph per batch size; compile: reduce-overhead

    def __post_init__(self) -> None:
        if self.graph not in ("none", "cuda_graph", "compile"):
            raise ValueError(f"graph mode {self.graph!r}: use none, cuda_graph or compile")
        if self.graph == "cuda_graph" and not self.device.startswith("cuda"):
            raise ValueError("graph mode cuda_graph needs a CUDA device")

    @property
    def dtype(self) -> torch.dtype:
        return torch.float16 if self.half else torch.float32


def to_channels_last(module: nn.Module) -> nn.Module:
    """Channels-last weights for every 2-D conv and channels-last-3d for every 3-D conv in ``module``."""
    for m in module.modules():
        if isinstance(m, nn.Conv3d):
            m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last_3d)
        elif isinstance(m, nn.Conv2d):
            m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last)
    return module


class _CapturedWarpDecode:
    """W then G captured in one CUDA graph for a fixed batch size; inputs are copied into static buffers."""

    def __init__(self, fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
                 feature: torch.Tensor, kp_source: torch.Tensor, kp_driving: torch.Tensor, warmup: int = 3) -> None:
        self._inputs = (feature.clone(), kp_source.clone(), kp_driving.clone())
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(warmup):
                fn(*self._inputs)
        torch.cuda.current_stream().wait_stream(stream)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph):
            self._output = fn(*self._inputs)

    def __call__(self, feature: torch.Tensor, kp_source: torch.Tensor, kp_driving: torch.Tensor) -> torch.Tensor:
        for dst, src in zip(self._inputs, (feature, kp_source, kp_driving), strict=True):
            dst.copy_(src)
        self._graph.replay()
        return self._output.clone()


class NeuralRuntime:
    """The five networks on one device with the chosen fast path. Not thread-safe: one engine thread each."""

    def __init__(self, nets: LivePortraitNets, options: RuntimeOptions | None = None) -> None:
        self.options = options or RuntimeOptions()
        self.nets = nets
        dev, dtype = torch.device(self.options.device), self.options.dtype
        self.device = dev
        nets.eval().to(dev)
        nets.motion_extractor.float()
        for name in ("appearance_feature_extractor", "warping_module", "spade_generator"):
            module = getattr(nets, name).to(dtype)
            if self.options.channels_last:
                to_channels_last(module)
        for mlp in (nets.stitching, nets.lip, nets.eye):
            mlp.float()
        self._graphs: dict[int, _CapturedWarpDecode] = {}
        self._compiled: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None
        if self.options.graph == "compile":
            self._compiled = torch.compile(self._warp_decode_eager, mode="reduce-overhead", fullgraph=False)

    @property
    def num_kp(self) -> int:
        return self.nets.arch.num_kp

    def _image_in(self, image: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        image = image.to(self.device, dtype, non_blocking=True)
        if self.options.channels_last and dtype != torch.float32:
            image = image.contiguous(memory_format=torch.channels_last)
        return image

    @torch.inference_mode()
    def appearance(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 3, 256, 256) [0,1]`` → feature volume ``(B, 32, 16, 64, 64)`` in the runtime dtype."""
        return self.nets.appearance_feature_extractor(self._image_in(image, self.options.dtype))

    @torch.inference_mode()
    def motion(self, image: torch.Tensor) -> KeypointInfo:
        """``(B, 3, 256, 256) [0,1]`` → :class:`KeypointInfo` (always fp32)."""
        return KeypointInfo.from_motion(self.nets.motion_extractor(image.to(self.device, torch.float32)))

    def _warp_decode_eager(self, feature: torch.Tensor, kp_source: torch.Tensor,
                           kp_driving: torch.Tensor) -> torch.Tensor:
        dtype = self.options.dtype
        warped = self.nets.warping_module(feature, kp_driving.to(dtype), kp_source.to(dtype))
        return self.nets.spade_generator(warped.out)

    @torch.inference_mode()
    def warp_decode(self, feature: torch.Tensor, kp_source: torch.Tensor, kp_driving: torch.Tensor) -> torch.Tensor:
        """Warp and generate a batch: ``feature (B, 32, 16, 64, 64)``, ``kp_* (B, K, 3)`` on the device →
        ``(B, 3, 512, 512) [0,1]`` in the runtime dtype. Sessions' frames are batched by concatenation."""
        if self.options.graph == "cuda_graph":
            b = feature.shape[0]
            graph = self._graphs.get(b)
            if graph is None:
                graph = _CapturedWarpDecode(self._warp_decode_eager, feature, kp_source, kp_driving)
                self._graphs[b] = graph
            return graph(feature, kp_source, kp_driving)
        if self._compiled is not None:
            if self.device.type == "cuda":
                torch.compiler.cudagraph_mark_step_begin()
            return self._compiled(feature, kp_source, kp_driving).clone()
        return self._warp_decode_eager(feature, kp_source, kp_driving)
