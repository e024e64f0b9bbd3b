"""The state of one request as it moves through the pipeline."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from seawall.config.schema import Deployment, Operation, PublicModel
from seawall.providers.base import Usage
from seawall.resilience.admission import Priority
from seawall.tenancy.principal import Principal

Protocol = Literal["openai", "anthropic"]


# The longest end-user name kept, as for the x-seawall-user header.
MAX_USER_CHARS = 200


def new_request_id() -> str:
    """A server-generated request id: unique, unguessable, sortable enough for logs."""
    return "req_" + os.urandom(12).hex()


@dataclass(slots=True)
class Identity:
    """Who sent the request, as far as headers tell."""

    api_key: str | None = None
    user: str | None = None
    session_id: str | None = None
    feature: str | None = None
    correlation_id: str | None = None
    # The client's address: the peer, or X-Forwarded-For when the peer is a trusted proxy.
    client_ip: str | None = None


class AttemptTiming(NamedTuple):
    """When one upstream attempt ran (``time.perf_counter()`` seconds) and how it ended."""

    deployment: Deployment
    began: float
    ended: float
    status: int
    # The error's name for a failed attempt, as on the request record.
    error_type: str | None


@dataclass(slots=True)
class RequestContext:
    """Everything stages read and write about one request."""

    request_id: str
    protocol: Protocol
    operation: Operation
    raw_body: bytes
    identity: Identity
    received_at: float = field(default_factory=time.time)
    started: float = field(default_factory=time.perf_counter)
    # From x-seawall-deadline-ms: the clock.now() value by which to answer (None: default).
    deadline: float | None = None
    priority: Priority = Priority.NORMAL
    # Seconds the request waited for an admission slot (None: never admitted).
    queue_wait_s: float | None = None
    # Filled by the authenticate stage: the verified key, its tenant and grants.
    principal: Principal | None = None
    # Filled by the decode stage: the canonical (OpenAI-shaped) request body.
    body: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    # The prompt's token count, counted once on first need (limits, budgets, execute).
    prompt_tokens: int | None = None
    # Filled by the route stage.
    public_model: PublicModel | None = None
    deployment: Deployment | None = None
    # Every upstream attempt, in order, as "deployment:status", and when each ran (traces).
    attempts: list[str] = field(default_factory=list)
    attempt_timings: list[AttemptTiming] = field(default_factory=list)
    # Filled as the answer is produced.
    usage: Usage | None = None
    cost_usd: float = 0.0
    # The complexity router's decision, when a routed model chose the deployment.
    route_decision: str | None = None
    # The request's Cache-Control header, and what the cache did (x-seawall-cache).
    cache_control: str | None = None
    cache: str | None = None
    first_byte_at: float | None = None
    status_code: int = 200
    error_type: str | None = None
    # Response headers stages want the client to see (x-seawall-*).
    response_headers: dict[str, str] = field(default_factory=dict)
    # The caller's W3C traceparent header, continued by the request's trace.
    traceparent: str | None = None

    def end_user(self) -> str | None:
        """The end user: the key's bound user or ``x-seawall-user``, else the body's ``user``."""
        if self.identity.user:
            return self.identity.user
        user = self.body.get("user")
        return user[:MAX_USER_CHARS] if isinstance(user, str) and user else None

    def attempted(
        self, deployment: Deployment, began: float, status: int, error_type: str | None = None
    ) -> None:
        """Note a finished upstream attempt that started at ``began`` (perf_counter)."""
        self.attempts.append(f"{deployment.name}:{status}")
        self.attempt_timings.append(
            AttemptTiming(deployment, began, time.perf_counter(), status, error_type)
        )

    def elapsed_ms(self) -> float:
        """Milliseconds since the request arrived."""
        return (time.perf_counter() - self.started) * 1000.0
