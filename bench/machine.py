"""What a benchmark ran on, and how much of the machine others used meanwhile."""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

from processes import cpu_seconds, machine_cpu_seconds

_PACKAGES = ("uvicorn", "granian", "httptools", "uvloop", "starlette", "aiohttp", "httpx", "orjson")


def machine_info() -> dict[str, Any]:
    """CPU, cores, memory, kernel, Python and the versions of the stack's packages."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    versions: dict[str, str] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        "packages": versions,
    }


class CpuWindow:
    """CPU used during a block: per named group of processes, by finished children, by all.

    ``others_cores`` is what the rest of the machine (other users' work) took,
    in cores, so a noisy figure can be told from a slow one.
    """

    def __init__(self, groups: Mapping[str, Sequence[int]]) -> None:
        self._groups = {name: list(pids) for name, pids in groups.items()}
        self.seconds = 0.0
        self.cpu_s: dict[str, float] = {}
        self.children_cpu_s = 0.0
        self.machine_busy_s = 0.0

    def __enter__(self) -> CpuWindow:
        self._wall = time.perf_counter()
        self._start = {name: cpu_seconds(pids) for name, pids in self._groups.items()}
        self._children = _children_cpu()
        self._busy, _ = machine_cpu_seconds()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.seconds = time.perf_counter() - self._wall
        self.cpu_s = {
            name: cpu_seconds(pids) - self._start[name] for name, pids in self._groups.items()
        }
        self.children_cpu_s = _children_cpu() - self._children
        self.machine_busy_s = machine_cpu_seconds()[0] - self._busy

    @property
    def others_cores(self) -> float:
        """Cores used by processes this benchmark did not start."""
        if self.seconds <= 0:
            return 0.0
        ours = sum(self.cpu_s.values()) + self.children_cpu_s
        return max(0.0, (self.machine_busy_s - ours) / self.seconds)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
