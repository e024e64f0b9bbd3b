"""Which requests the cache may answer, and what Cache-Control asks of it."""

from __future__ import annotations

from typing import Any

import pytest

from seawall.cache.policy import BODY_FIELD, Directive, deterministic, directive_of
from seawall.errors import InvalidRequest
from seawall.pipeline.cache import CacheFieldRemover
from seawall.pipeline.context import Identity, RequestContext
from seawall.providers.base import ChatResult, Usage


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, Directive()),
        ("no-store", Directive(no_store=True)),
        ("No-Cache", Directive(no_cache=True)),
        ("max-age=60", Directive(max_age=60)),
        ('private, max-age="5", no-cache', Directive(no_cache=True, max_age=5)),
        ("max-age=soon", Directive()),  # an HTTP cache ignores what it cannot read
    ],
)
def test_cache_control_header(header: str | None, expected: Directive) -> None:
    assert directive_of(header, {}) == expected


def test_body_field_overrides_the_header_and_never_reaches_the_upstream() -> None:
    body: dict[str, Any] = {"model": "m", BODY_FIELD: "no-store"}
    assert directive_of("max-age=10", body) == Directive(no_store=True)
    assert BODY_FIELD not in body


@pytest.mark.parametrize("value", [5, {"max_age": 5}, "max-age=later"])
def test_malformed_body_field_is_a_clear_400(value: Any) -> None:
    with pytest.raises(InvalidRequest) as raised:
        directive_of(None, {BODY_FIELD: value})
    assert raised.value.status == 400
    assert BODY_FIELD in str(raised.value)


def test_lookup_is_skipped_by_no_cache_and_no_store() -> None:
    assert Directive().lookup and Directive(max_age=1).lookup
    assert not Directive(no_cache=True).lookup and not Directive(no_store=True).lookup


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"temperature": 0}, True),
        ({"temperature": 0.0}, True),
        ({"seed": 7, "temperature": 0.9}, True),
        ({}, False),  # OpenAI's default temperature is 1
        ({"temperature": 0.2}, False),
        ({"seed": None}, False),
    ],
)
def test_deterministic_requests(body: dict[str, Any], expected: bool) -> None:
    assert deterministic(body) is expected


async def test_with_caching_off_the_body_field_still_never_reaches_the_upstream() -> None:
    sent: list[dict[str, Any]] = []

    async def upstream(ctx: RequestContext) -> ChatResult:
        sent.append(dict(ctx.body))
        return ChatResult({}, Usage())

    ctx = RequestContext("req_1", "openai", "chat", b"", Identity())
    ctx.body = {"model": "m", BODY_FIELD: "no-store"}
    await CacheFieldRemover().wrap(upstream)(ctx)
    assert sent == [{"model": "m"}]
