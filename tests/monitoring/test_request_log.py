"""The request log: one line per finished request, prompt and answer only when asked, redacted."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from seawall.monitoring.answer import Answer
from seawall.monitoring.json_logs import JsonFormatter
from seawall.monitoring.request_log import PAYLOAD_CHARS, RequestLog
from seawall.pipeline.context import Identity, RequestContext
from tests.stores.sample_records import sample_record

KEY = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
MAIL = "jane.doe@example.com"


def chat(*messages: dict[str, Any]) -> RequestContext:
    ctx = RequestContext("req_1", "openai", "chat", b"", Identity())
    ctx.body = {"model": "gpt-4o-mini", "messages": list(messages)}
    return ctx


def logged(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The request log's lines, as the JSON formatter writes them."""
    formatter = JsonFormatter()
    return [
        orjson.loads(formatter.format(record))
        for record in caplog.records
        if record.name == "seawall.requests"
    ]


@pytest.fixture(autouse=True)
def _info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="seawall.requests")


def test_one_line_per_request_with_its_facts_and_no_text(caplog: pytest.LogCaptureFixture) -> None:
    record = sample_record(
        correlation_id="corr-7",
        tenant_id="acme",
        key_id="key_1",
        cost_usd=0.0021,
        ttfb_ms=40.04,
        attempts="openai-primary:429,openai-backup:200",
        cache="miss",
        refused=False,
    )
    ctx = chat({"role": "user", "content": f"I am {MAIL}, my key is {KEY}"})
    RequestLog().finished(ctx, record, Answer(text="Noted, Jane."))
    [line] = logged(caplog)
    assert {
        name: value for name, value in line.items() if name not in {"ts", "level", "logger"}
    } == {
        "message": "request finished",
        "request_id": record.request_id,
        "correlation_id": "corr-7",
        "operation": "chat",
        "protocol": "openai",
        "model": "gpt-4o-mini",
        "deployment": "openai-primary",
        "provider": "openai",
        "status": 200,
        "error_type": None,
        "stream": False,
        "prompt_tokens": 12,
        "completion_tokens": 34,
        "cost_usd": 0.0021,
        "latency_ms": 123.5,
        "ttfb_ms": 40.0,
        "cache": "miss",
        "refused": False,
        "tenant": "acme",
        "key_id": "key_1",
        "attempts": "openai-primary:429,openai-backup:200",
    }
    assert line["level"] == "INFO" and line["logger"] == "seawall.requests"


def test_payloads_are_logged_redacted(caplog: pytest.LogCaptureFixture) -> None:
    ctx = chat(
        {"role": "system", "content": "You help with billing."},
        {"role": "user", "content": [{"type": "text", "text": f"I am {MAIL}, key {KEY}"}]},
    )
    answer = Answer(text="I will write to jane.doe@example.com or call +44 20 7946 0958.")
    RequestLog(payloads=True).finished(ctx, sample_record(), answer)
    [line] = logged(caplog)
    assert line["prompt"] == (
        "system: You help with billing.\nuser: I am [REDACTED:email], key [REDACTED:api_key]"
    )
    assert line["answer"] == "I will write to [REDACTED:email] or call [REDACTED:phone]."
    assert MAIL not in str(line) and KEY not in str(line)


def test_a_long_prompt_keeps_its_end_and_a_secret_cut_at_the_edge_is_still_redacted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The key starts 10 characters before the part that is kept: cut there, its
    # remaining characters would no longer look like a key.
    tail = " " + "z" * (PAYLOAD_CHARS - len(KEY) + 9)
    prompt = "a" * 20_000 + " " + KEY + tail
    RequestLog(payloads=True).finished(
        chat({"role": "user", "content": prompt}), sample_record(), Answer(text="b" * 50_000)
    )
    [line] = logged(caplog)
    assert line["prompt"].startswith("…") and line["prompt"].endswith(tail)
    assert len(line["prompt"]) == PAYLOAD_CHARS + 1
    assert KEY[-10:] not in line["prompt"] and "[REDACTED:api_key]" in line["prompt"]
    assert line["answer"] == "b" * PAYLOAD_CHARS + "…"


def test_embedding_inputs_are_the_prompt_and_a_failure_has_no_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ctx = RequestContext("req_2", "openai", "embeddings", b"", Identity())
    ctx.body = {"model": "text-embedding-3-small", "input": ["first text", f"mail {MAIL}"]}
    record = sample_record(operation="embeddings", status_code=502, error_type="UpstreamError")
    RequestLog(payloads=True).finished(ctx, record, None)
    [line] = logged(caplog)
    assert line["prompt"] == "first text\nmail [REDACTED:email]"
    assert line["answer"] is None
    assert line["status"] == 502 and line["error_type"] == "UpstreamError"


def test_nothing_is_logged_when_info_is_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="seawall.requests")
    RequestLog(payloads=True).finished(chat(), sample_record(), None)
    assert logged(caplog) == []
