"""One log line per finished request, on the ``seawall.requests`` logger.

With ``monitoring.logs.requests`` every request that leaves a record also leaves a
line: its ids, model, deployment, outcome, tokens, cost and timings, the same facts
as the ledger, for log pipelines that want them as they happen. No prompt or answer
text is logged unless ``monitoring.logs.payloads`` is also on; then the prompt's last
``PAYLOAD_CHARS`` characters and the answer's first ``PAYLOAD_CHARS`` go in too, with
secrets and personal data redacted (``monitoring.redact``).
"""

from __future__ import annotations

import logging
from typing import Any

from seawall.monitoring.answer import Answer
from seawall.monitoring.redact import redact
from seawall.pipeline.context import RequestContext
from seawall.stores.records import RequestRecord

logger = logging.getLogger("seawall.requests")

# How much of a prompt (its end, where the latest turn is) and of an answer (its start).
PAYLOAD_CHARS = 2000
# Redaction reads this much more than is kept, so a secret cut in two at the edge of
# what is kept is still recognised, and redacted, whole.
_REDACTION_MARGIN = 4096


class RequestLog:
    """Logs each finished request; with ``payloads``, its prompt and answer, redacted."""

    __slots__ = ("_payloads",)

    def __init__(self, *, payloads: bool = False) -> None:
        self._payloads = payloads

    def finished(self, ctx: RequestContext, record: RequestRecord, answer: Answer | None) -> None:
        """Log one line about the request that just ended."""
        if not logger.isEnabledFor(logging.INFO):
            return
        fields: dict[str, Any] = {
            "request_id": record.request_id,
            "correlation_id": record.correlation_id,
            "operation": record.operation,
            "protocol": record.protocol,
            "model": record.public_model,
            "deployment": record.deployment,
            "provider": record.provider,
            "status": record.status_code,
            "error_type": record.error_type,
            "stream": record.stream,
            "prompt_tokens": record.prompt_tokens,
            "completion_tokens": record.completion_tokens,
            "cost_usd": round(record.cost_usd, 10),
            "latency_ms": round(record.latency_ms, 1),
            "ttfb_ms": round(record.ttfb_ms, 1) if record.ttfb_ms is not None else None,
            "cache": record.cache,
            "refused": record.refused,
            "tenant": record.tenant_id,
            "key_id": record.key_id,
            "attempts": record.attempts,
        }
        if self._payloads:
            fields["prompt"] = redacted_end(prompt_text(ctx.body))
            fields["answer"] = redacted_start(answer.text) if answer is not None else None
        logger.info("request finished", extra=fields)


def redacted_end(text: str) -> str:
    """The last ``PAYLOAD_CHARS`` characters of ``text`` redacted, after "…" when cut."""
    kept = redact(text[-(PAYLOAD_CHARS + _REDACTION_MARGIN) :])
    return "…" + kept[-PAYLOAD_CHARS:] if len(kept) > PAYLOAD_CHARS else kept


def redacted_start(text: str) -> str:
    """The first ``PAYLOAD_CHARS`` characters of ``text`` redacted, then "…" when cut."""
    kept = redact(text[: PAYLOAD_CHARS + _REDACTION_MARGIN])
    return kept[:PAYLOAD_CHARS] + "…" if len(kept) > PAYLOAD_CHARS else kept


def prompt_text(body: dict[str, Any]) -> str:
    """The text a request sent: its messages as ``role: text`` lines, or its inputs."""
    messages = body.get("messages")
    if isinstance(messages, list):
        return "\n".join(
            f"{message.get('role')}: {_content_text(message.get('content'))}"
            for message in messages
            if isinstance(message, dict)
        )
    inputs = body.get("input")
    if isinstance(inputs, str):
        return inputs
    if isinstance(inputs, list):
        return "\n".join(item for item in inputs if isinstance(item, str))
    return ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""
