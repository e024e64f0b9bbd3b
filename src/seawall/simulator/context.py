"""Everything a simulator's handlers share, built once per simulator."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from seawall.simulator.answers import AnswerWriter
from seawall.simulator.capacity import TokenBucket
from seawall.simulator.faults import Fault, FaultKind, FaultSchedule
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
    # None when the profile sets no capacity limit.
    capacity: TokenBucket | None = None
    # Stamps stats.last_request_at; Unix time, so a benchmark can compare it with its own.
    wall_clock: Callable[[], float] = field(default=time.time)

    @classmethod
    def build(
        cls,
        profile: SimulatorProfile,
        counter: TokenCounter | None = None,
        *,
        now: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> SimulatorContext:
        """A fresh context with the profile's start-up faults armed and its capacity full."""
        counter = counter if counter is not None else TokenCounter()
        capacity = (
            TokenBucket(profile.capacity_rps, profile.effective_capacity_burst, now)
            if profile.capacity_rps > 0
            else None
        )
        return cls(
            profile=profile,
            counter=counter,
            writer=AnswerWriter(counter, profile.output_tokens),
            faults=FaultSchedule(profile.faults),
            stats=SimulatorStats(),
            capacity=capacity,
            wall_clock=wall_clock,
        )

    def admit(self, path: str, model: str | None) -> Fault | None:
        """Count a model request and refuse it over capacity, else take its armed fault."""
        self.stats.requests[path] += 1
        self.stats.last_request_at = self.wall_clock()
        wait = self.capacity.take() if self.capacity is not None else None
        if wait is not None:
            # Over capacity, the client sees what an armed rate_limit fault sends.
            self.stats.capacity_refusals += 1
            fault: Fault | None = Fault(kind=FaultKind.RATE_LIMIT, times=1, retry_after=wait)
        else:
            fault = self.faults.take(model)
        if fault is not None:
            self.stats.faults[fault.kind] += 1
        return fault

    def answered(self, request: web.BaseRequest, response: web.StreamResponse) -> None:
        """Count the status of a model route's answer, unless the connection died first."""
        transport = request.transport
        gone = transport is None or transport.is_closing()
        # A response already prepared has sent its status line, even if a reset followed.
        if response.prepared or not gone:
            self.stats.answered[response.status] += 1

    def authorized(self, presented: str | None) -> bool:
        """Whether ``presented`` is acceptable as this simulator's API key."""
        expected = self.profile.api_key
        return expected is None or presented == expected
