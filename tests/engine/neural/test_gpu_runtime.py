"""The fast GPU path (fp16, channels-last, CUDA graph, batching) equals eager; skipped without CUDA."""

from __future__ import annotations

import pytest
import torch
from livepuppet.engine.neural.arch import NeuralArch
from livepuppet.engine.neural.checkpoint import build_networks
from livepuppet.engine.neural.runtime import NeuralRuntime, RuntimeOptions

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def _inputs(batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator(device="cuda").manual_seed(0)
    feature = torch.randn(batch, 32, 16, 64, 64, device="cuda", generator=g).half()
    kp_s = torch.rand(batch, 21, 3, device="cuda", generator=g) * 1.6 - 0.8
    return feature, kp_s, kp_s + 0.05 * torch.randn(batch, 21, 3, device="cuda", generator=g)


@pytest.fixture(scope="module")
def runtimes() -> tuple[NeuralRuntime, NeuralRuntime]:
    torch.manual_seed(0)
    nets = build_networks(NeuralArch())
    eager = NeuralRuntime(nets, RuntimeOptions(device="cuda", half=True, channels_last=True))
    graphed = NeuralRuntime(nets, RuntimeOptions(device="cuda", half=True, channels_last=True, graph="cuda_graph"))
    return eager, graphed


def test_cuda_graph_equals_eager_fp16(runtimes) -> None:
    eager, graphed = runtimes
    x = _inputs(1)
    ref = eager.warp_decode(*x).float()
    out = graphed.warp_decode(*x).float()
    out2 = graphed.warp_decode(*_inputs(1)).float()  # replay with fresh inputs
    assert (out - ref).abs().max() < 2e-2
    assert (out2 - ref).abs().max() < 2e-2


def test_batch_of_8_equals_8_singles(runtimes) -> None:
    eager, graphed = runtimes
    feature, kp_s, kp_d = _inputs(8)
    batch = graphed.warp_decode(feature, kp_s, kp_d).float()
    for i in range(8):
        one = eager.warp_decode(feature[i:i + 1], kp_s[i:i + 1], kp_d[i:i + 1]).float()
        assert (batch[i:i + 1] - one).abs().max() < 2e-2
