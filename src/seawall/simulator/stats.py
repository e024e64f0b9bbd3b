"""Counts of what the simulator served, for tests and drills to assert on."""

from __future__ import annotations

from collections import Counter
from typing import Any

from seawall.simulator.faults import FaultKind


class SimulatorStats:
    """What the simulator served since start or the last reset.

    ``requests`` counts model requests per path (those that reached fault
    injection) and ``faults`` the faults injected per kind; a capacity refusal
    counts as a ``rate_limit`` fault and in ``capacity_refusals``. ``answered``
    counts the HTTP status of every answer on a model route whose status line
    went out (validation errors included; connections reset before the headers
    are not). ``last_request_at`` is the Unix time of the latest model request.
    """

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.faults: Counter[FaultKind] = Counter()
        self.answered: Counter[int] = Counter()
        self.capacity_refusals = 0
        self.last_request_at: float | None = None

    def reset(self) -> None:
        """Forget every count."""
        self.requests.clear()
        self.faults.clear()
        self.answered.clear()
        self.capacity_refusals = 0
        self.last_request_at = None

    def as_json(self) -> dict[str, Any]:
        """The control API's view of the counts."""
        return {
            "requests": dict(self.requests),
            "faults": {kind.value: count for kind, count in self.faults.items()},
            "answered": {str(status): count for status, count in sorted(self.answered.items())},
            "capacity_refusals": self.capacity_refusals,
            "last_request_at": self.last_request_at,
        }
