"""The request record: one row per accepted request, success or failure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True)
class RequestRecord:
    """What Seawall remembers about one request."""

    request_id: str
    created_at: float  # unix seconds, when the request arrived
    operation: str  # "chat" | "embeddings"
    protocol: str  # the client's wire format: "openai" | "anthropic"
    public_model: str | None
    deployment: str | None
    provider: str | None
    upstream_model: str | None
    stream: bool
    status_code: int
    error_type: str | None
    prompt_tokens: int
    completion_tokens: int
    usage_estimated: bool
    latency_ms: float
    ttfb_ms: float | None
    # Every upstream attempt in order, "deployment:status,...": fallbacks and retries.
    attempts: str | None = None
    correlation_id: str | None = None
    user: str | None = None
    session_id: str | None = None
    feature: str | None = None
    tenant_id: str | None = None
    key_id: str | None = None
    client_ip: str | None = None
    cost_usd: float = 0.0
    # The complexity router's choice, e.g. "cheap score=0.21", when one routed it.
    route_decision: str | None = None
    # The cache's part: hit-exact, hit-semantic, miss or bypass (None: no cache).
    cache: str | None = None
    # Whether the answer was a refusal (None: no answer, or refusals not detected).
    refused: bool | None = None


class RecordStore(Protocol):
    """Durable home of request records; writes are idempotent by request id."""

    async def write_batch(self, records: Sequence[RequestRecord]) -> None:
        """Insert records; a record whose request id exists already is ignored."""
        ...

    async def get(self, request_id: str) -> RequestRecord | None:
        """One record by Seawall's request id."""
        ...

    async def ping(self) -> None:
        """Raise if the store cannot be reached."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
