"""Quiet native logs at the CLI edge: MediaPipe, TFLite and glog print INFO/WARNING lines straight to
file descriptor 2 from C++ (before any Python logging is set up), so they are filtered there.

While active, fd 2 is a pipe; a thread forwards everything written to it to the real stderr except
native INFO/WARNING lines. Errors (glog ``E``/``F`` lines) and everything Python writes pass through.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator

NATIVE_NOISE = re.compile(
    rb"^(?:[IW]\d{4} \d\d:\d\d:[\d.]+\s+\d+ [\w.\-]+:\d+\] "  # glog/absl: W0000 00:00:1796….39   15504 f.cc:114]
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|INFO: (?:Created TensorFlow Lite|Initialized TensorFlow Lite|TfLite)"  # TFLite's own logger
    rb")")


def is_native_noise(line: bytes) -> bool:
    """Whether ``line`` is a native INFO/WARNING log line that a user does not need to see."""
    return NATIVE_NOISE.match(line) is not None


class _Filter:
    def __init__(self) -> None:
        sys.stderr.flush()
        self._saved = os.dup(2)
        read_fd, write_fd = os.pipe()
        self._read = read_fd
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._thread = threading.Thread(target=self._pump, name="native-log-filter", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        pending = b""
        while True:
            chunk = os.read(self._read, 65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            out = b"".join(line + b"\n" for line in lines if not is_native_noise(line))
            if b"\r" in pending:  # progress bars redraw with \r and no newline: pass them on now
                head, _, pending = pending.rpartition(b"\r")
                out += head + b"\r"
            if out:
                os.write(self._saved, out)
        if pending and not is_native_noise(pending):
            os.write(self._saved, pending)
        os.close(self._read)

    def close(self) -> None:
        sys.stderr.flush()
        os.dup2(self._saved, 2)  # closes the pipe's last write end: the thread drains and stops
        self._thread.join(timeout=2.0)
        os.close(self._saved)


@contextlib.contextmanager
def quiet_native_logs(enabled: bool = True) -> Iterator[None]:
    """Filter native INFO/WARNING lines from stderr inside the block (``enabled=False``: show them)."""
    if not enabled:
        yield
        return
    try:
        active = _Filter()
    except OSError:  # no usable fd 2 (e.g. closed): nothing to filter
        yield
        return
    try:
        yield
    finally:
        active.close()
