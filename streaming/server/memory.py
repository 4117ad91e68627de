"""Give freed heap memory back to the operating system after a burst of large, short-lived allocations
(decoding and preparing a big portrait). glibc keeps freed blocks in per-thread arenas, so without this a
server's RSS ratchets up by tens of megabytes per 25-megapixel upload although nothing is kept."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows): nothing to do
        return None


def release_free_memory() -> bool:
    """``malloc_trim(0)`` where glibc provides it; True if memory could be released."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
