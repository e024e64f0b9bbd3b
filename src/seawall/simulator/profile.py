"""How the simulated upstream behaves when no fault is armed."""

from __future__ import annotations

from dataclasses import dataclass

from seawall.simulator.faults import Fault

DEFAULT_OUTPUT_TOKENS = 32


@dataclass(frozen=True, slots=True)
class SimulatorProfile:
    """The simulator's pacing, answer length, credentials and start-up faults.

    ``latency_ms`` passes before the response headers; ``ttft_ms`` passes between
    the headers and the first stream chunk; ``tokens_per_second`` paces the
    chunks after it (0 means as fast as the socket allows). A non-streamed
    answer waits for all three, as a real model would have to generate it.
    """

    latency_ms: float = 0.0
    ttft_ms: float = 0.0
    tokens_per_second: float = 0.0
    output_tokens: int = DEFAULT_OUTPUT_TOKENS
    # When set, model routes require it: as a Bearer token, or x-api-key on /v1/messages.
    api_key: str | None = None
    # Armed when the simulator starts, before any control API call.
    faults: tuple[Fault, ...] = ()

    def __post_init__(self) -> None:
        if self.latency_ms < 0 or self.ttft_ms < 0 or self.tokens_per_second < 0:
            raise ValueError("latency_ms, ttft_ms and tokens_per_second must be >= 0")
        if self.output_tokens < 1:
            raise ValueError("output_tokens must be >= 1")
