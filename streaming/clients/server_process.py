"""``livepuppet serve`` in its own process, for the fuzz, loss and soak harnesses: free ports, loopback ICE,
its log captured to a file, and its memory and thread count read from ``/proc`` (Linux)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType

LOG_PROBLEMS = ("Traceback", "Task was destroyed", "cannot reuse already awaited coroutine", "was never awaited",
                "Error handling request", "ERROR ", "Exception in thread", "Exception ignored",
                "resource_tracker:")  # a process's tracker freeing shared memory it did not own


def stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state, ppid, …; utime is [11], stime [12]), or
    None once the process has ended."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        fields = stat_fields(int(entry.name))
        if fields is not None and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The soak and loss harnesses measure stability with every session admitted: on a 2-core machine the engine's
# admission control (which counts cores) would otherwise refuse some of their sessions.
SOAK_OVERRIDES = ('server.admission="accept"',)


class ServerProcess:
    """Start the server on free loopback ports (``overrides`` are ``--set`` values, ``preset`` a ``--config``,
    ``env`` extra environment variables for its process); stop it on exit."""

    def __init__(self, log_path: Path, overrides: tuple[str, ...] = (), start_timeout_s: float = 120.0,
                 preset: str | None = None, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.ws_port = free_port()
        self.log_path = log_path
        self._overrides = overrides
        self._preset = preset
        self._timeout = start_timeout_s
        self._env = dict(env or {})
        self._proc: subprocess.Popen[bytes] | None = None
        self._stdout: list[str] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def __enter__(self) -> ServerProcess:
        cmd = [sys.executable, "-m", "livepuppet", "serve", "--port", str(self.port), "--ws-port", str(self.ws_port),
               "--set", 'server.ice_addresses=["127.0.0.1"]']
        if self._preset is not None:
            cmd += ["--config", self._preset]
        for value in self._overrides:
            cmd += ["--set", value]
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self._env)
        log = self.log_path.open("wb")
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, env=env)
        ready = threading.Event()

        def read() -> None:
            assert self._proc is not None and self._proc.stdout is not None
            for raw in self._proc.stdout:
                line = raw.decode(errors="replace")
                self._stdout.append(line)
                if "serving" in line:
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(self._timeout) or self._proc.poll() is not None:
            self.__exit__(None, None, None)
            raise RuntimeError(f"livepuppet serve did not start: {''.join(self._stdout)}{self.log()[-2000:]}")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.send_signal(signal.SIGTERM)  # the server's clean shutdown path
        try:
            self._proc.wait(60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def pids(self) -> list[int]:
        """The server process and its children (the engine worker processes) now."""
        return [self.pid, *_children(self.pid)]

    def status(self) -> tuple[float, int]:
        """(resident memory in MB, thread count) of the server process and its engine worker processes now."""
        rss_kb, threads = 0, 0
        for pid in self.pids():
            try:
                text = Path(f"/proc/{pid}/status").read_text()
            except OSError:  # ended meanwhile
                continue
            rss = re.search(r"VmRSS:\s+(\d+) kB", text)
            count = re.search(r"Threads:\s+(\d+)", text)
            assert rss is not None and count is not None
            rss_kb += int(rss.group(1))
            threads += int(count.group(1))
        return rss_kb / 1024, threads

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_problems(self) -> list[str]:
        """Log lines that mean something went wrong inside the server (errors, leaked tasks), each with the
        lines after it (the traceback)."""
        lines = self.log().splitlines()
        return ["\n".join(lines[i:i + 14]) for i, line in enumerate(lines) if any(p in line for p in LOG_PROBLEMS)
                and "Traceback" not in line]  # a traceback's first line is reported with the error before it
