"""Which deployments may answer a request, in the order to try them.

A public model's own deployments come first (as configured, or balanced), then
those of each fallback model in order, recursively, each deployment once. The
context fallback is not in the list: the executor adds it when a prompt turns out
too long for what it tried.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from seawall.config.schema import Deployment, PublicModel
from seawall.resilience.balancer import Balancer


@dataclass(frozen=True, slots=True)
class Candidate:
    """One deployment that may answer, and the public model it serves under."""

    model: PublicModel
    deployment: Deployment


class CandidatePlanner:
    """Expands a public model into its candidates; the chains are resolved once."""

    def __init__(
        self,
        models: Mapping[str, PublicModel],
        usable: Mapping[str, tuple[Deployment, ...]],
        balancer: Balancer,
    ) -> None:
        self._models = models
        self._usable = usable
        self._balancer = balancer
        self._chains = {name: self._chain(name) for name in models}

    def plan(self, model: PublicModel) -> list[Candidate]:
        """The candidates for one request to ``model``, best first."""
        chain = self._chains[model.name]
        if len(chain) == 1 and chain[0].strategy == "ordered":
            # The common case: one model, its deployments in configured order.
            return [Candidate(model, d) for d in self._usable.get(model.name, ())]
        seen: set[str] = set()
        candidates: list[Candidate] = []
        for member in chain:
            for deployment in self._ordered(member):
                if deployment.name not in seen:
                    seen.add(deployment.name)
                    candidates.append(Candidate(member, deployment))
        return candidates

    def context_fallback(self, model: PublicModel) -> list[Candidate]:
        """The candidates of ``model``'s context fallback (and its own fallbacks)."""
        target = self._models.get(model.context_fallback or "")
        return self.plan(target) if target is not None else []

    def _ordered(self, model: PublicModel) -> Sequence[Deployment]:
        deployments = self._usable.get(model.name, ())
        if model.strategy == "balanced":
            return self._balancer.order(deployments)
        return deployments

    def _chain(self, name: str) -> tuple[PublicModel, ...]:
        """The model and its fallbacks, depth first, each once (cycles are cut)."""
        chain: list[PublicModel] = []
        seen: set[str] = set()
        pending = [name]
        while pending:
            current = pending.pop(0)
            model = self._models.get(current)
            if model is None or current in seen:
                continue
            seen.add(current)
            chain.append(model)
            pending[:0] = model.fallbacks
        return tuple(chain)
