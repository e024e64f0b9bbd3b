"""A small request ledger whose report numbers can be checked by hand (docs use it too).

Two tenants over three UTC days. Requests sit one second either side of midnight
so a report that buckets by local time, or by the wrong edge, shows it.
"""

from __future__ import annotations

from typing import Any

from seawall.stores.feedback import Feedback
from seawall.stores.records import RequestRecord
from tests.stores.sample_records import sample_record

MARCH_1 = 1_740_787_200.0  # 2025-03-01T00:00:00Z
DAY = 86_400.0
HOUR = 3_600.0

_GPT = {"public_model": "gpt-4o-mini", "deployment": "openai-primary", "provider": "openai"}
_CLAUDE = {
    "public_model": "claude-sonnet",
    "deployment": "anthropic-primary",
    "provider": "anthropic",
    "upstream_model": "claude-sonnet-4",
}
_ALICE = {"tenant_id": "acme", "key_id": "key_acme_web", "user": "alice", "feature": "chat"}
_BOB = {"tenant_id": "acme", "key_id": "key_acme_batch", "user": "bob", "feature": "summarise"}
_CAROL = {"tenant_id": "acme", "key_id": "key_acme_web", "user": "carol", "feature": "chat"}
_DAVE = {"tenant_id": "globex", "key_id": "key_globex", "user": "dave", "feature": None}


def _request(
    request_id: str, at: float, who: dict[str, Any], model: dict[str, Any], **fields: Any
) -> RequestRecord:
    return sample_record(request_id=request_id, created_at=at, **who, **model, **fields)


def sample_ledger() -> list[RequestRecord]:
    """Nine requests: acme's alice, bob and carol, globex's dave; three failures, one
    cache hit (alice's second), one refusal (dave's second)."""
    return [
        _request(
            "req_alice_1",
            MARCH_1 - 1,  # 2025-02-28T23:59:59Z
            _ALICE,
            _GPT,
            session_id="conv-1",
            prompt_tokens=1_200,
            completion_tokens=300,
            cost_usd=0.00036,
            latency_ms=420.0,
            cache="miss",
            refused=False,
        ),
        _request(
            "req_alice_2",
            MARCH_1,  # 2025-03-01T00:00:00Z
            _ALICE,
            _GPT,
            session_id="conv-1",
            prompt_tokens=1_500,
            completion_tokens=400,
            cost_usd=0.000465,
            latency_ms=4.0,
            cache="hit-exact",
            refused=False,
        ),
        _request(
            "req_bob_1",
            MARCH_1 + 9.5 * HOUR,
            _BOB,
            _CLAUDE,
            session_id="conv-2",
            prompt_tokens=8_000,
            completion_tokens=1_200,
            cost_usd=0.042,
            latency_ms=2_400.0,
            cache="bypass",
            refused=False,
        ),
        _request(
            "req_bob_2",
            MARCH_1 + DAY - 1,  # 2025-03-01T23:59:59Z
            _BOB,
            _CLAUDE,
            session_id="conv-2",
            prompt_tokens=9_000,
            completion_tokens=1_500,
            cost_usd=0.0495,
            cache="miss",
            refused=False,
        ),
        _request(
            "req_alice_limited",
            MARCH_1 + DAY,  # 2025-03-02T00:00:00Z
            _ALICE,
            {**_GPT, "deployment": None, "provider": None, "upstream_model": None},
            status_code=429,
            error_type="RateLimited",
            prompt_tokens=0,
            completion_tokens=0,
        ),
        _request(
            "req_carol_1",
            MARCH_1 + DAY + 60,
            _CAROL,
            _GPT,
            session_id="conv-3",
            status_code=502,
            error_type="UpstreamUnavailable",
            prompt_tokens=0,
            completion_tokens=0,
            cache="miss",
        ),
        _request(
            "req_carol_2",
            MARCH_1 + DAY + 90,
            _CAROL,
            _GPT,
            session_id="conv-3",
            status_code=502,
            error_type="UpstreamUnavailable",
            prompt_tokens=0,
            completion_tokens=0,
            cache="miss",
        ),
        _request(
            "req_dave_1",
            MARCH_1 + DAY + HOUR,
            _DAVE,
            _CLAUDE,
            session_id="conv-4",
            prompt_tokens=20_000,
            completion_tokens=4_000,
            cost_usd=0.12,
            cache="bypass",
            refused=False,
        ),
        _request(
            "req_dave_2",
            MARCH_1 + DAY + HOUR + 100,
            _DAVE,
            _CLAUDE,
            session_id="conv-4",
            prompt_tokens=1_000,
            completion_tokens=100,
            cost_usd=0.0045,
            latency_ms=310.0,
            cache="bypass",
            refused=True,  # a short answer that declined
        ),
    ]


def sample_feedback() -> list[Feedback]:
    """End users' verdicts on three of the requests: alice liked one and not the other."""
    return [
        Feedback("req_alice_1", "acme", "key_acme_web", 1.0, "up"),
        Feedback("req_alice_2", "acme", "key_acme_web", 0.0, "down", "too long"),
        Feedback("req_bob_1", "acme", "key_acme_batch", 0.75),
    ]
