"""How the simulated upstream behaves when no fault is armed."""

from __future__ import annotations

import math
from dataclasses import dataclass

from seawall.simulator.faults import Fault

DEFAULT_OUTPUT_TOKENS = 32
# Without an explicit burst, the bucket holds a tenth of a second's requests.
_DEFAULT_BURST_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class SimulatorProfile:
    """The simulator's pacing, capacity, answer length, credentials and start-up faults.

    ``latency_ms`` passes before the response headers; ``ttft_ms`` passes between
    the headers and the first stream chunk; ``tokens_per_second`` paces the
    chunks after it (0 means as fast as the socket allows). A non-streamed
    answer waits for all three, as a real model would have to generate it.

    ``capacity_rps`` caps model requests per second as a provider's rate limiter
    does (0 means unlimited); ``capacity_burst`` is how many it admits at once
    (None means a tenth of ``capacity_rps``, at least 1). Requests over it get 429.
    """

    latency_ms: float = 0.0
    ttft_ms: float = 0.0
    tokens_per_second: float = 0.0
    output_tokens: int = DEFAULT_OUTPUT_TOKENS
    # When set, model routes require it: as a Bearer token, or x-api-key on /v1/messages.
    api_key: str | None = None
    # Armed when the simulator starts, before any control API call.
    faults: tuple[Fault, ...] = ()
    capacity_rps: float = 0.0
    capacity_burst: float | None = None

    def __post_init__(self) -> None:
        if self.latency_ms < 0 or self.ttft_ms < 0 or self.tokens_per_second < 0:
            raise ValueError("latency_ms, ttft_ms and tokens_per_second must be >= 0")
        if self.output_tokens < 1:
            raise ValueError("output_tokens must be >= 1")
        if not math.isfinite(self.capacity_rps) or self.capacity_rps < 0:
            raise ValueError("capacity_rps must be a finite number >= 0 (0 means unlimited)")
        if self.capacity_burst is not None:
            if self.capacity_rps == 0:
                raise ValueError("capacity_burst needs capacity_rps > 0")
            if not math.isfinite(self.capacity_burst) or self.capacity_burst < 1:
                raise ValueError("capacity_burst must be a finite number >= 1")

    @property
    def effective_capacity_burst(self) -> float:
        """The bucket size: ``capacity_burst``, or a tenth of a second's requests (at least 1)."""
        if self.capacity_burst is not None:
            return self.capacity_burst
        return max(1.0, self.capacity_rps * _DEFAULT_BURST_SECONDS)
