"""Numba, optional at import: CPU kernels compiled ahead of their first call's types, cached on disk, and run
without the GIL (so engine threads render in parallel). Without Numba a kernel stays plain Python, and
callers that need speed check :func:`available` and take their NumPy/OpenCV path instead."""

from __future__ import annotations

from typing import Any

numba: Any
try:
    import numba
except ImportError:  # pragma: no cover - exercised on installs without numba
    numba = None


def available() -> bool:
    """Whether Numba is installed (compiled kernels can be used)."""
    return numba is not None


def cpu_kernel(fn: Any) -> Any:
    """Compile ``fn`` for the CPU (no GIL, NumPy's error model, no fast-math: results match the twins')."""
    if numba is None:
        return fn
    return numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")(fn)
