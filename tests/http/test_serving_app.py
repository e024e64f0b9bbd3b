"""The serving endpoints' last line of defence: a bug still gets an answer a user can quote."""

from __future__ import annotations

import httpx
import orjson
import pytest
from starlette.responses import Response

from seawall.http.incoming import Incoming
from seawall.http.serving_app import ServingEndpoint


async def test_an_escaping_error_is_an_openai_shaped_500_with_the_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(incoming: Incoming) -> Response:
        raise RuntimeError("a bug in a handler")

    transport = httpx.ASGITransport(app=ServingEndpoint(broken))
    async with httpx.AsyncClient(transport=transport, base_url="http://seawall") as client:
        answer = await client.post("/v1/chat/completions", json={})
    request_id = answer.headers["x-request-id"]
    assert answer.status_code == 500 and request_id.startswith("req_")
    error = orjson.loads(answer.content)["error"]
    assert request_id in error["message"] and error["type"]
    assert "a bug in a handler" in caplog.text and request_id in caplog.text
