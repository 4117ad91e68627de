"""Output files that appear complete or not at all, and never overwrite an input.

An :class:`AtomicFile` is written under a hidden temporary name in the output's own folder (same file
system, so the final :func:`os.replace` is atomic) and moved into place only by :meth:`AtomicFile.commit`;
an error or Ctrl-C discards it and leaves any existing file at the destination untouched.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from livepuppet.errors import InputError


def check_not_input(output: str | Path, inputs: Iterable[str | Path | None]) -> None:
    """Raise :class:`InputError` if ``output`` names any input file (same path, symlink or hard link)."""
    out = Path(output)
    if out.is_dir():
        raise InputError(f"output {out} is a folder: give a file name")
    for item in inputs:
        if item is None:
            continue
        src = Path(item)
        same = out.resolve() == src.resolve()
        if not same and out.exists() and src.exists():
            same = os.path.samefile(out, src)
        if same:
            raise InputError(f"output {out} is the input {src}: choose another output name (nothing was written)")


class AtomicFile:
    """A file written in full, then moved to ``path``; use as a context manager or call commit/discard.

    ``temp`` is the path to write to (it keeps the destination's suffix, so format sniffing still works).
    Leaving the ``with`` block normally commits; any exception (KeyboardInterrupt included) discards.
    """

    def __init__(self, path: str | Path, inputs: Iterable[str | Path | None] = ()) -> None:
        self.path = Path(path)
        check_not_input(self.path, inputs)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.temp = self.path.with_name(f".{self.path.stem}.{secrets.token_hex(4)}.partial{self.path.suffix}")
        fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies, as for open()
        os.close(fd)
        self._done = False

    def commit(self) -> Path:
        """Move the finished temporary file into place (atomic on the same file system)."""
        if not self._done:
            os.replace(self.temp, self.path)
            self._done = True
        return self.path

    def discard(self) -> None:
        """Remove the temporary file; the destination is left as it was."""
        if not self._done:
            self._done = True
            self.temp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()
