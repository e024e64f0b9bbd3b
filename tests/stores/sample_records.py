"""Request records for tests, unique by default."""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any

from seawall.stores.records import RequestRecord


def sample_record(**overrides: Any) -> RequestRecord:
    """A plausible record of a successful chat request, with a fresh request id."""
    record = RequestRecord(
        request_id=f"req_{uuid.uuid4().hex}",
        created_at=time.time(),
        operation="chat",
        protocol="openai",
        public_model="gpt-4o-mini",
        deployment="openai-primary",
        provider="openai",
        upstream_model="gpt-4o-mini-2024-07-18",
        stream=False,
        status_code=200,
        error_type=None,
        prompt_tokens=12,
        completion_tokens=34,
        usage_estimated=False,
        latency_ms=123.456,
        ttfb_ms=None,
    )
    return dataclasses.replace(record, **overrides)
