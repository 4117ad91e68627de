"""Backend selection, the CUDA-missing error, and the CUDA source compiling with NVIDIA's compiler."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from livepuppet.errors import ConfigError, DependencyError
from livepuppet.kernels import blend, color_convert, mesh_raster
from livepuppet.kernels.backend import get_backend
from livepuppet.kernels.cuda_source import CUDA_SOURCE, KERNEL_NAMES


def test_cpu_backend_is_the_twins() -> None:
    cpu = get_backend("cpu")
    assert cpu.name == "cpu" and cpu.xp is np
    rgb = np.random.default_rng(0).integers(0, 256, (8, 12, 3), dtype=np.uint8)
    assert np.array_equal(cpu.rgb_to_nv12(rgb), color_convert.rgb_to_nv12(rgb))
    assert cpu.mesh_warp is mesh_raster.mesh_warp and cpu.feather_blend is blend.feather_blend
    assert isinstance(cpu.to_host(cpu.asarray(rgb)), np.ndarray)


def test_cuda_without_cupy_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` fail like a missing package
    with pytest.raises(DependencyError, match="cupy"):
        get_backend("cuda")


def test_unknown_device_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cpu, cuda"):
        get_backend("tpu")


def test_every_kernel_is_defined_once() -> None:
    for name in KERNEL_NAMES:
        assert CUDA_SOURCE.count(f" {name}(") + CUDA_SOURCE.count(f"({name},") == 1, name


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc (CUDA toolkit) is not installed")
def test_cuda_source_compiles_for_the_gpu(tmp_path: Path) -> None:
    """The device side (inline PTX for fp16, atomics, intrinsics) compiles for sm_80/sm_90 with nvcc."""
    source = tmp_path / "kernels.cu"
    source.write_text(CUDA_SOURCE)
    ptx = tmp_path / "kernels.ptx"
    subprocess.run(["nvcc", "-ptx", "-arch=sm_80", str(source), "-o", str(ptx)], check=True, capture_output=True)
    text = ptx.read_text()
    assert all(f".entry {name}(" in text for name in KERNEL_NAMES)
