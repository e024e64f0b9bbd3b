"""Load balancing across the deployments of a public model, per instance.

A balanced model draws its first deployment at random, in proportion to a score:
its weight, divided by (outstanding requests + 1) and by the moving average (EWMA)
of its latency. Idle deployments of equal speed share traffic by weight; a busy or
slow one gets less, as in Envoy's weighted least-request balancing. Drawing, rather
than always taking the best, keeps many instances from herding onto the same
deployment. The rest follow by score, as fallbacks. Open circuits are skipped later,
by the executor, so this module knows nothing of health.
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
        scores = [self._score(d) for d in deployments]
        point = self._clock.random() * sum(scores)
        first = deployments[-1]
        for deployment, score in zip(deployments, scores, strict=True):
            point -= score
            if point < 0:
                first = deployment
                break
        rest = sorted((d for d in deployments if d is not first), key=self._score, reverse=True)
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

    def _score(self, deployment: Deployment) -> float:
        load = self._load.get(deployment.name) or _Load()
        # Unmeasured deployments look as fast as can be: they get tried, and so measured.
        latency = load.latency if load.latency is not None else 0.0
        return deployment.weight / ((load.outstanding + 1) * (latency + _LATENCY_FLOOR))
