"""Starting, watching and always stopping the servers a benchmark runs.

Every process starts in its own session (process group), so stopping it also
stops the workers it forked; ``ProcessGroup`` stops everything it started when
its block exits, whether by success, an exception or Ctrl-C (SIGINT), and
``stop_on_sigterm`` turns SIGTERM and SIGHUP into the same clean exit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType

_STOP_GRACE_S = 10.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_on_sigterm() -> None:
    """Make SIGTERM and SIGHUP raise KeyboardInterrupt, so cleanup blocks run."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)


class ProcessGroup:
    """The processes a benchmark started; all of them are stopped when the block exits."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop_all()

    def start(
        self, name: str, command: Sequence[str], env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a process in its own session; its output goes to ``<log_dir>/<name>.log``."""
        log = (self._log_dir / f"{name}.log").open("ab")
        try:
            process = subprocess.Popen(
                list(command),
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        self._running.append((name, process))
        return process

    def log(self, name: str) -> str:
        """What a process printed so far (its last 4,000 characters)."""
        path = self._log_dir / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        """SIGTERM the process group, then SIGKILL it if it has not exited in time."""
        self._running = [(n, p) for n, p in self._running if p is not process]
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()
        # Workers that outlived their parent are still in the group.
        _signal_group(process, signal.SIGKILL)

    def stop_pid(self, pid: int) -> None:
        """Stop the started process with this id."""
        for _, process in list(self._running):
            if process.pid == pid:
                self.stop(process)

    def stop_all(self) -> None:
        """Stop every process still running, newest first."""
        # Ctrl-C during cleanup must not leave servers behind.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            while self._running:
                self.stop(self._running[-1][1])
        finally:
            signal.signal(signal.SIGINT, previous)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def wait_ready(
    url: str, process: subprocess.Popen[bytes], timeout_s: float = 60.0, *, any_status: bool = True
) -> None:
    """Block until ``url`` answers (any HTTP status, or 2xx only), or raise with the reason."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1.0):
                return
        except urllib.error.HTTPError:
            if any_status:
                return
            time.sleep(0.1)
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s:g}s")


def wait_settled(pid: int, workers: int, timeout_s: float = 30.0) -> list[int]:
    """Wait until the server has ``workers`` workers whose memory stopped changing.

    A server answers as soon as its first worker is up; the others may still be
    importing and starting, which would skew what is measured next.
    """
    deadline = time.monotonic() + timeout_s
    previous: list[int] = []
    steady = 0
    while time.monotonic() < deadline:
        found = server_workers(pid)
        try:
            sizes = [rss_bytes(worker) for worker in found]
        except (OSError, RuntimeError):
            sizes = []
        same = len(found) == workers and len(sizes) == len(previous)
        if same and all(abs(a - b) <= b * 0.005 for a, b in zip(sizes, previous, strict=True)):
            steady += 1
            if steady >= 4:
                return found
        else:
            steady = 0
        previous = sizes
        time.sleep(0.25)
    raise RuntimeError(f"the server's {workers} worker(s) did not settle within {timeout_s:g}s")


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid``."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found.extend(int(child) for child in task.read_text().split())
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``."""
    found: list[int] = []
    pending = children(pid)
    while pending:
        child = pending.pop()
        found.append(child)
        pending.extend(children(child))
    return found


def command_line(pid: int) -> str:
    """The process's command line, space separated ('' once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def server_workers(pid: int) -> list[int]:
    """The processes serving requests: the forked or spawned workers, or the server itself."""
    helpers = ("resource_tracker", "semaphore_tracker")
    workers = [
        child for child in descendants(pid) if not any(h in command_line(child) for h in helpers)
    ]
    return workers or [pid]


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pids: Sequence[int]) -> float:
    """CPU time the processes' live threads have used so far, to the nanosecond.

    From /proc/PID/task/*/schedstat rather than the tick-sampled utime/stime of
    /proc/PID/stat: short bursts after idle periods are charged fairly.
    """
    total = 0
    for pid in pids:
        for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            try:
                total += int(stat.read_text().split()[0])
            except (OSError, IndexError, ValueError):
                continue
    return total / 1e9


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return (total - idle) / _CLOCK_TICKS, total / _CLOCK_TICKS
