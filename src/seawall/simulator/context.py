"""Everything a simulator's handlers share, built once per simulator."""

from __future__ import annotations

from dataclasses import dataclass

from seawall.simulator.answers import AnswerWriter
from seawall.simulator.faults import Fault, FaultSchedule
from seawall.simulator.profile import SimulatorProfile
from seawall.simulator.stats import SimulatorStats
from seawall.tokens import TokenCounter


@dataclass(slots=True)
class SimulatorContext:
    """The profile plus the services and state of one running simulator."""

    profile: SimulatorProfile
    counter: TokenCounter
    writer: AnswerWriter
    faults: FaultSchedule
    stats: SimulatorStats

    @classmethod
    def build(
        cls, profile: SimulatorProfile, counter: TokenCounter | None = None
    ) -> SimulatorContext:
        """A fresh context with the profile's start-up faults armed."""
        counter = counter if counter is not None else TokenCounter()
        return cls(
            profile=profile,
            counter=counter,
            writer=AnswerWriter(counter, profile.output_tokens),
            faults=FaultSchedule(profile.faults),
            stats=SimulatorStats(),
        )

    def admit(self, path: str, model: str | None) -> Fault | None:
        """Count a model request and take the fault armed for it, if any."""
        self.stats.requests[path] += 1
        fault = self.faults.take(model)
        if fault is not None:
            self.stats.faults[fault.kind] += 1
        return fault

    def authorized(self, presented: str | None) -> bool:
        """Whether ``presented`` is acceptable as this simulator's API key."""
        expected = self.profile.api_key
        return expected is None or presented == expected
