"""Log lines: one JSON object each, carrying the id of the request they were logged in."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from seawall.http.incoming import Incoming
from seawall.http.request_id import RequestIdMiddleware
from seawall.http.serving_app import ServingEndpoint
from seawall.monitoring.json_logs import JsonFormatter, TextFormatter

logger = logging.getLogger("tests.json_logs")


class Captured:
    """What ``logger`` wrote through a formatter."""

    def __init__(self, formatter: logging.Formatter) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(formatter)

    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.text().splitlines()]


def capture(formatter: logging.Formatter) -> Iterator[Captured]:
    captured = Captured(formatter)
    logger.addHandler(captured.handler)
    logger.setLevel(logging.INFO)
    try:
        yield captured
    finally:
        logger.removeHandler(captured.handler)


@pytest.fixture
def json_log() -> Iterator[Captured]:
    yield from capture(JsonFormatter())


@pytest.fixture
def text_log() -> Iterator[Captured]:
    yield from capture(TextFormatter())


async def in_own_task(client: httpx.AsyncClient, path: str) -> httpx.Response:
    # uvicorn runs every request in a task of its own; so do these tests, so what one
    # request sets in its context stays there, as it does in the server.
    return await asyncio.create_task(client.post(path))


async def test_lines_logged_while_serving_carry_that_requests_id(json_log: Captured) -> None:
    both_arrived = asyncio.Barrier(2)

    async def handler(incoming: Incoming) -> Response:
        await both_arrived.wait()  # the two requests are in flight together
        logger.info("answering %s", "now")
        return Response(b"{}")

    transport = httpx.ASGITransport(app=ServingEndpoint(handler))
    logger.info("before any request")
    async with httpx.AsyncClient(transport=transport, base_url="http://seawall") as client:
        answers = await asyncio.gather(
            in_own_task(client, "/v1/chat/completions"), in_own_task(client, "/v1/chat/completions")
        )
    logger.info("after the requests")
    before, *serving, after = json_log.lines()
    assert "request_id" not in before and "request_id" not in after
    assert sorted(line["request_id"] for line in serving) == sorted(
        answer.headers["x-request-id"] for answer in answers
    )
    assert all(line["message"] == "answering now" for line in serving)


async def test_lines_logged_behind_the_request_id_middleware_carry_the_id(
    json_log: Captured,
) -> None:
    async def page(request: Request) -> Response:
        logger.warning("admin page")
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[Route("/admin/page", page, methods=["POST"])],
        middleware=[Middleware(RequestIdMiddleware)],
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://seawall"
    ) as client:
        answer = await in_own_task(client, "/admin/page")
    [line] = json_log.lines()
    assert line["request_id"] == answer.headers["x-request-id"]
    assert line["level"] == "WARNING" and line["logger"] == "tests.json_logs"


def test_a_line_has_a_utc_timestamp_level_logger_and_message(json_log: Captured) -> None:
    logger.info("%d requests from %s", 3, "acme")
    [line] = json_log.lines()
    assert line["message"] == "3 requests from acme"
    assert line["level"] == "INFO" and line["logger"] == "tests.json_logs"
    assert line["ts"].endswith("Z")
    stamped = datetime.fromisoformat(line["ts"])
    assert stamped.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - stamped) < timedelta(minutes=1)


def test_an_exception_is_one_line_with_its_traceback(json_log: Captured) -> None:
    try:
        raise ValueError("the store said no")
    except ValueError:
        logger.exception("could not settle")
    assert len(json_log.text().splitlines()) == 1
    [line] = json_log.lines()
    assert line["message"] == "could not settle"
    assert line["exc"].startswith("Traceback (most recent call last):")
    assert "ValueError: the store said no" in line["exc"]


def test_extra_fields_are_kept_and_made_json_safe(json_log: Captured) -> None:
    logger.info(
        "finished",
        extra={
            "tenant": "acme",
            "tokens": 12,
            "cost_usd": 0.25,
            "stream": False,
            "cache": None,
            "path": Path("/var/seawall"),
            "huge": 2**70,
        },
    )
    [line] = json_log.lines()
    assert line["tenant"] == "acme" and line["tokens"] == 12 and line["cost_usd"] == 0.25
    assert line["stream"] is False and line["cache"] is None
    # What JSON cannot hold is written as text, never lost and never a broken line.
    assert line["path"] == "/var/seawall"
    assert line["huge"] == str(2**70)


def test_an_explicit_request_id_wins_over_the_context(json_log: Captured) -> None:
    logger.info("golden prompt answered", extra={"request_id": "req_explicit"})
    assert json_log.lines()[0]["request_id"] == "req_explicit"


def test_the_text_format_keeps_the_fields_on_the_first_line(text_log: Captured) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.error("request failed", exc_info=True, extra={"status": 502})
    first, *traceback = text_log.text().splitlines()
    assert first.endswith("ERROR tests.json_logs: request failed status=502")
    assert traceback[-1] == "RuntimeError: boom"
