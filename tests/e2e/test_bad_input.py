"""Bad input gets a clear 4xx in the client's own error format, never a 500."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import LiveSeawall
from tests.openai_spec import assert_valid

CHAT = "/v1/chat/completions"


@pytest.fixture
def http(live_seawall: LiveSeawall) -> httpx.Client:
    return httpx.Client(
        base_url=live_seawall.url,
        headers={"authorization": f"Bearer {live_seawall.key}", "x-api-key": live_seawall.key},
        timeout=10,
    )


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "could not parse the JSON"),
        (b"\xff\xfe\xfa", 400, "not valid UTF-8"),
        (b"", 400, "empty"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', 400, "'model'"),
        (b'{"model": "gpt-4o-mini"}', 400, "'messages'"),
        (b'{"model": "gpt-4o-mini", "messages": []}', 400, "empty array"),
        (b'{"model": "gpt-4o-mini", "messages": "hi"}', 400, "expected an array"),
        (b'{"model": 7, "messages": [{"role": "user", "content": "x"}]}', 400, "'model'"),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "wizard", "content": "x"}]}',
            400,
            "role",
        ),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "n": 0}',
            400,
            "'n'",
        ),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}],'
            b' "stream": "yes"}',
            400,
            "'stream'",
        ),
        (b'{"model": "nope", "messages": [{"role": "user", "content": "x"}]}', 404, "nope"),
    ],
)
def test_openai_route_rejects_bad_bodies_in_openai_shape(
    http: httpx.Client, body: bytes, status: int, needle: str
) -> None:
    response = http.post(CHAT, content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert response.headers["x-request-id"].startswith("req_")
    error = response.json()
    assert_valid("ErrorResponse", error)
    assert needle in error["error"]["message"]


def test_two_megabyte_body_is_413_on_both_routes(http: httpx.Client) -> None:
    big = (
        b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "'
        + (b"a" * 2_000_000)
        + b'"}]}'
    )
    openai_style = http.post(CHAT, content=big)
    assert openai_style.status_code == 413
    assert "max_body_bytes" in openai_style.json()["error"]["message"]
    anthropic_style = http.post("/v1/messages", content=big)
    assert anthropic_style.status_code == 413
    assert anthropic_style.json()["error"]["type"] == "request_too_large"


def test_anthropic_route_answers_errors_in_anthropic_shape(http: httpx.Client) -> None:
    response = http.post("/v1/messages", content=b"{oops")
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"


def test_unknown_path_and_wrong_method_are_openai_errors(http: httpx.Client) -> None:
    missing = http.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert_valid("ErrorResponse", missing.json())
    wrong = http.get(CHAT)
    assert wrong.status_code == 405
    assert_valid("ErrorResponse", wrong.json())


def test_health_probes(http: httpx.Client) -> None:
    assert http.get("/health/live").json() == {"status": "ok"}
    ready = http.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"
