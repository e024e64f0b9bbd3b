"""Counts of what the simulator served, for tests and drills to assert on."""

from __future__ import annotations

from collections import Counter
from typing import Any

from seawall.simulator.faults import FaultKind


class SimulatorStats:
    """Requests per path and injected faults per kind, since start or the last reset."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.faults: Counter[FaultKind] = Counter()

    def reset(self) -> None:
        """Forget every count."""
        self.requests.clear()
        self.faults.clear()

    def as_json(self) -> dict[str, Any]:
        """The control API's view of the counts."""
        return {
            "requests": dict(self.requests),
            "faults": {kind.value: count for kind, count in self.faults.items()},
        }
