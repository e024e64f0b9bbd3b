"""Load balancing across the deployments of a public model, per instance.

A balanced model picks its first deployment by "power of two choices": two
candidates drawn at random in proportion to their weights, and the one with the
lower cost wins, where cost is (outstanding requests + 1) times the EWMA of its
latency. The rest follow by cost, as fallbacks. Two random choices spread load as
evenly as a full scan without herding every instance onto the same "best"
deployment, and the latency term moves traffic away from a slow one. Open circuits
are skipped later, by the executor, so this module knows nothing of health.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from seawall.config.schema import Deployment
from seawall.resilience.clock import Clock

# Weight of the newest latency sample in the moving average.
_EWMA_ALPHA = 0.3
# Keeps idle, unmeasured deployments comparable by outstanding requests and weight.
_LATENCY_FLOOR = 0.001


@dataclass(slots=True)
class _Load:
    outstanding: int = 0
    latency: float | None = None


class Balancer:
    """Outstanding requests and latency per deployment, and the order to try them in."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._load: dict[str, _Load] = {}

    def order(self, deployments: Sequence[Deployment]) -> list[Deployment]:
        """The deployments, best first, for one request."""
        if len(deployments) < 2:
            return list(deployments)
        first = self._pick(self._draw(deployments), self._draw(deployments))
        rest = sorted((d for d in deployments if d is not first), key=self._cost)
        return [first, *rest]

    def started(self, deployment: str) -> None:
        """A request to ``deployment`` is in flight."""
        self._load_of(deployment).outstanding += 1

    def finished(self, deployment: str, latency: float | None) -> None:
        """That request ended; ``latency`` (seconds to the answer) when it succeeded."""
        load = self._load_of(deployment)
        load.outstanding = max(0, load.outstanding - 1)
        if latency is not None:
            previous = load.latency
            load.latency = (
                latency if previous is None else previous + _EWMA_ALPHA * (latency - previous)
            )

    def outstanding(self, deployment: str) -> int:
        """Requests in flight to ``deployment`` from this instance."""
        load = self._load.get(deployment)
        return load.outstanding if load else 0

    def latency(self, deployment: str) -> float | None:
        """The moving average of ``deployment``'s latency, once it answered."""
        load = self._load.get(deployment)
        return load.latency if load else None

    def _load_of(self, deployment: str) -> _Load:
        load = self._load.get(deployment)
        if load is None:
            load = self._load[deployment] = _Load()
        return load

    def _draw(self, deployments: Sequence[Deployment]) -> Deployment:
        total = sum(d.weight for d in deployments)
        point = self._clock.random() * total
        for deployment in deployments:
            point -= deployment.weight
            if point < 0:
                return deployment
        return deployments[-1]

    def _pick(self, a: Deployment, b: Deployment) -> Deployment:
        return a if self._cost(a) <= self._cost(b) else b

    def _cost(self, deployment: Deployment) -> float:
        load = self._load.get(deployment.name) or _Load()
        # Unmeasured deployments look as fast as can be: they get tried, and so measured.
        latency = load.latency if load.latency is not None else 0.0
        return (load.outstanding + 1) * (latency + _LATENCY_FLOOR) / deployment.weight
