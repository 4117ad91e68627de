"""Run the CUDA kernels' source on the CPU: compiled as C++ by g++, launched serially (one block of one
thread, which the grid-stride kernels allow), called with CuPy's argument rules checked strictly.

A development and test tool, not a backend: it lets machines without a GPU check the very kernel source
and the argument marshalling of :class:`~livepuppet.kernels.cuda_backend.CudaBackend` against the CPU twins
(``CudaBackend(numpy, EmulatedModule())``). Needs ``g++`` (GCC ≥ 12 for ``_Float16``) on PATH.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from livepuppet.kernels.cuda_source import CUDA_SOURCE

PRELUDE = r"""
#include <cmath>
#include <cstring>
using std::fabs; using std::fmin; using std::fmax; using std::floor; using std::ceil;
struct lp_dim3 { unsigned x, y, z; };
static const lp_dim3 threadIdx = {0, 0, 0}, blockIdx = {0, 0, 0}, blockDim = {1, 1, 1}, gridDim = {1, 1, 1};
#define __global__
#define __device__
#define __forceinline__ inline
static inline int atomicMax(int* a, int v) { int o = *a; if (v > o) *a = v; return o; }
static inline int __float2int_rn(float f) { return (int)std::nearbyint(f); }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float lp_h2f(unsigned short h) { _Float16 v; std::memcpy(&v, &h, 2); return (float)v; }
static inline unsigned short lp_f2h(float f) {
    _Float16 v = (_Float16)f; unsigned short h; std::memcpy(&h, &v, 2); return h;
}
"""

# C parameter type → (ctypes type, accepted NumPy dtypes for pointers | the NumPy scalar type CuPy needs).
_POINTERS = {"float": (np.float32,), "int": (np.int32,), "unsigned char": (np.uint8,),
             "unsigned short": (np.uint16, np.float16)}
_SCALARS: dict[str, tuple[Any, type]] = {"int": (ctypes.c_int32, np.int32), "long long": (ctypes.c_int64, np.int64),
                                          "float": (ctypes.c_float, np.float32)}


def compiler_available() -> bool:
    """Whether ``g++`` is on PATH."""
    return shutil.which("g++") is not None


class EmulatedKernel:
    """One kernel: ``kernel(grid, block, args)`` like a CuPy ``RawKernel``; arrays must be C-contiguous
    NumPy arrays of the parameter's type, scalars NumPy scalars of its exact width (as CuPy needs)."""

    def __init__(self, name: str, fn: Any, params: list[tuple[str, bool]]) -> None:
        self.name, self._fn, self._params = name, fn, params

    def __call__(self, grid: tuple[int, ...], block: tuple[int, ...], args: tuple[Any, ...]) -> None:
        if len(args) != len(self._params):
            raise TypeError(f"{self.name}: {len(args)} arguments for {len(self._params)} parameters")
        converted: list[Any] = []
        for i, ((ctype, pointer), arg) in enumerate(zip(self._params, args, strict=True)):
            if pointer:
                ok = isinstance(arg, np.ndarray) and arg.dtype.type in _POINTERS[ctype] and arg.flags.c_contiguous
                if not ok:
                    raise TypeError(f"{self.name} arg {i}: expected a contiguous {ctype}* array, got {type(arg)} "
                                    f"{getattr(arg, 'dtype', '')}")
                converted.append(ctypes.c_void_p(arg.ctypes.data))
            else:
                cty, scalar = _SCALARS[ctype]
                if type(arg) is not scalar:
                    raise TypeError(f"{self.name} arg {i}: expected {scalar.__name__} for {ctype}, got {type(arg)}")
                converted.append(cty(arg))
        self._fn(*converted)


class EmulatedModule:
    """The whole CUDA source compiled for the CPU; ``get_function(name)`` like ``cupy.RawModule``."""

    def __init__(self, source: str = CUDA_SOURCE, build_dir: Path | None = None) -> None:
        code = PRELUDE + source
        digest = hashlib.sha1(code.encode()).hexdigest()[:16]
        folder = build_dir or Path(tempfile.gettempdir()) / "livepuppet-cuda-emulation"
        folder.mkdir(parents=True, exist_ok=True)
        lib = folder / f"k{digest}.so"
        if not lib.exists():  # parallel test workers each build under their own name, then rename atomically
            cpp, tmp = folder / f"k{digest}.{os.getpid()}.cpp", folder / f"k{digest}.{os.getpid()}.so"
            cpp.write_text(code)
            subprocess.run(["g++", "-O2", "-ffp-contract=off", "-fno-fast-math", "-shared", "-fPIC", "-o", str(tmp),
                            str(cpp)], check=True, capture_output=True, text=True)
            tmp.replace(lib)
        self._lib = ctypes.CDLL(str(lib))
        expanded = subprocess.run(["g++", "-E", "-P", "-x", "c++", "-"], input=code, check=True,
                                  capture_output=True, text=True).stdout
        self._signatures = {m.group(1): _parse_params(m.group(2))
                            for m in re.finditer(r'extern\s+"C"\s+void\s+(\w+)\s*\(([^)]*)\)', expanded)}

    def get_function(self, name: str) -> EmulatedKernel:
        fn = getattr(self._lib, name)
        fn.restype = None
        return EmulatedKernel(name, fn, self._signatures[name])


def _parse_params(text: str) -> list[tuple[str, bool]]:
    """``"const float* a, int n"`` → ``[("float", True), ("int", False)]``."""
    params = []
    for raw in text.split(","):
        decl = raw.replace("const ", "").strip()
        pointer = "*" in decl
        ctype = re.sub(r"\s+", " ", decl.replace("*", " ").rsplit(None, 1)[0] if not pointer
                       else decl.split("*")[0]).strip()
        params.append((ctype, pointer))
    return params
