"""The client rate-limit stage: headers on answers, 429s, and tokens settled after the answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from seawall.errors import RateLimited, UpstreamUnavailable
from seawall.pipeline.context import Identity, RequestContext
from seawall.pipeline.limit import ClientRateLimit, LimitsFor
from seawall.pipeline.pipeline import Handler, Pipeline, Reply
from seawall.pipeline.rejections import RejectionLog
from seawall.pipeline.token_estimate import output_allowance, prompt_tokens
from seawall.providers.base import ChatResult, EmbeddingResult, JSONObject, Usage
from seawall.tenancy.client_limits import (
    ClientLimits,
    Decision,
    Entry,
    MemoryClientLimits,
    ip_subject,
    key_subject,
)
from seawall.tokens import TokenCounter
from tests.resilience.fake_clock import FakeClock

KEY = key_subject("key_1")
IP = ip_subject("192.0.2.1")
BODY: JSONObject = {
    "model": "chat",
    "messages": [{"role": "user", "content": "Say hello."}],
    "max_tokens": 200,
}


class CountingStore(MemoryClientLimits):
    """The memory store, counting the calls the stage makes."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.calls = 0

    async def check(self, entries: Sequence[Entry], tokens: int) -> Decision:
        """Count, then check."""
        self.calls += 1
        return await super().check(entries, tokens)

    async def settle(self, entries: Sequence[Entry], estimated: int, used: int) -> None:
        """Count, then settle."""
        self.calls += 1
        await super().settle(entries, estimated, used)


class CountingCounter(TokenCounter):
    """A token counter that counts how often it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def count_text(self, text: str) -> int:
        """Count, then count tokens."""
        self.calls += 1
        return super().count_text(text)


class ListStream:
    """A finished upstream stream of fixed chunks and usage."""

    def __init__(self, usage: Usage) -> None:
        self._usage = usage
        self.closed = False

    @property
    def usage(self) -> Usage:
        """The stream's usage."""
        return self._usage

    async def __aiter__(self) -> AsyncIterator[JSONObject]:
        for text in ("Hel", "lo"):
            yield {"choices": [{"delta": {"content": text}}]}

    async def aclose(self) -> None:
        """Note the close."""
        self.closed = True


def context(body: JSONObject | None = None) -> RequestContext:
    """A decoded chat request from one client."""
    ctx = RequestContext(
        request_id="req_test",
        protocol="openai",
        operation="chat",
        raw_body=b"{}",
        identity=Identity(api_key="sk-test", client_ip="192.0.2.1"),
    )
    ctx.body = dict(body if body is not None else BODY)
    return ctx


def answering(usage: Usage, calls: list[RequestContext]) -> Handler:
    """A terminal handler that answers with ``usage`` and notes each call."""

    async def answer(ctx: RequestContext) -> Reply:
        calls.append(ctx)
        return ChatResult({"choices": []}, usage)

    return answer


def pipeline(stage: ClientRateLimit, terminal: Handler) -> Pipeline:
    """The stage in front of ``terminal``."""
    return Pipeline([stage], terminal)


def limits(entries: list[Entry]) -> LimitsFor:
    """A ``limits_for`` that gives every request ``entries``."""
    return lambda ctx: entries


async def test_an_answer_carries_openai_rate_limit_headers() -> None:
    clock = FakeClock()
    stage = ClientRateLimit(
        MemoryClientLimits(clock),
        limits([(KEY, ClientLimits(rpm=60, tpm=100_000)), (IP, ClientLimits(rpm=10))]),
        TokenCounter(),
    )
    calls: list[RequestContext] = []
    ctx = context()
    await pipeline(stage, answering(Usage(20, 5), calls)).run(ctx)
    await stage.drain()  # settlements run off the response path

    estimate = prompt_tokens(TokenCounter(), BODY) + output_allowance(BODY, 4096, "chat")
    assert ctx.response_headers["x-ratelimit-limit-requests"] == "10"
    assert ctx.response_headers["x-ratelimit-remaining-requests"] == "9"
    assert ctx.response_headers["x-ratelimit-reset-requests"] == "6s"
    assert ctx.response_headers["x-ratelimit-limit-tokens"] == "100000"
    # The headers tell what was booked before the answer: the estimate.
    assert ctx.response_headers["x-ratelimit-remaining-tokens"] == str(100_000 - estimate)
    assert len(calls) == 1


async def test_a_request_over_its_limit_is_refused_before_any_work() -> None:
    clock = FakeClock()
    rejections = RejectionLog(clock.now)
    stage = ClientRateLimit(
        MemoryClientLimits(clock),
        limits([(IP, ClientLimits(rpm=2))]),
        TokenCounter(),
        rejections=rejections,
    )
    calls: list[RequestContext] = []
    run = pipeline(stage, answering(Usage(1, 1), calls)).run
    await run(context())
    await run(context())

    with pytest.raises(RateLimited) as refused:
        await run(context())
    headers = refused.value.headers()
    assert headers["retry-after"] == "30"
    assert headers["retry-after-ms"] == "30000"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"] == "1m0s"
    assert "on IP address 192.0.2.1" in refused.value.message
    assert len(calls) == 2
    assert stage.refused["ip"] == 1
    assert rejections.total["rate_limit_exceeded"] == 1

    clock.advance(30.0)
    await run(context())
    assert len(calls) == 3


async def test_requests_without_limits_cost_no_store_call_and_no_counting() -> None:
    clock = FakeClock()
    store = CountingStore(clock)
    counter = CountingCounter()
    stage = ClientRateLimit(store, limits([(KEY, ClientLimits()), (IP, ClientLimits())]), counter)
    ctx = context()
    await pipeline(stage, answering(Usage(1, 1), [])).run(ctx)
    await stage.drain()  # settlements run off the response path
    assert store.calls == 0
    assert counter.calls == 0
    assert not any(name.startswith("x-ratelimit") for name in ctx.response_headers)


async def test_request_limits_alone_count_no_tokens_and_settle_nothing() -> None:
    clock = FakeClock()
    store = CountingStore(clock)
    counter = CountingCounter()
    stage = ClientRateLimit(store, limits([(KEY, ClientLimits(rpm=5))]), counter)
    ctx = context()
    await pipeline(stage, answering(Usage(1, 1), [])).run(ctx)
    await stage.drain()  # settlements run off the response path
    assert store.calls == 1
    assert counter.calls == 0
    assert "x-ratelimit-limit-tokens" not in ctx.response_headers


async def test_tokens_are_settled_against_the_real_usage() -> None:
    clock = FakeClock()
    store = MemoryClientLimits(clock)
    entries = [(KEY, ClientLimits(tpm=10_000))]
    stage = ClientRateLimit(store, limits(entries), TokenCounter())
    await pipeline(stage, answering(Usage(30, 20), [])).run(context())
    await stage.drain()  # settlements run off the response path

    after = await store.peek(entries, 0)
    assert after.tokens is not None
    assert after.tokens.remaining == 10_000 - 50


async def test_a_failed_request_gives_its_tokens_back_but_counts_as_a_request() -> None:
    clock = FakeClock()
    store = MemoryClientLimits(clock)
    entries = [(KEY, ClientLimits(rpm=10, tpm=10_000))]
    stage = ClientRateLimit(store, limits(entries), TokenCounter())

    async def failing(ctx: RequestContext) -> Reply:
        raise UpstreamUnavailable("down")

    with pytest.raises(UpstreamUnavailable):
        await pipeline(stage, failing).run(context())
        await stage.drain()  # settlements run off the response path
    after = await store.peek(entries, 0)
    assert after.tokens is not None and after.requests is not None
    assert after.tokens.remaining == 10_000
    assert after.requests.remaining == 9


async def test_a_stream_settles_its_tokens_when_it_ends() -> None:
    clock = FakeClock()
    store = MemoryClientLimits(clock)
    entries = [(KEY, ClientLimits(tpm=10_000))]
    stage = ClientRateLimit(store, limits(entries), TokenCounter())
    upstream = ListStream(Usage(40, 60))

    async def streaming(ctx: RequestContext) -> Reply:
        return upstream

    reply = await pipeline(stage, streaming).run(context())
    estimate = prompt_tokens(TokenCounter(), BODY) + output_allowance(BODY, 4096, "chat")
    during = await store.peek(entries, 0)
    assert during.tokens is not None
    assert during.tokens.remaining == 10_000 - estimate

    assert not isinstance(reply, ChatResult | EmbeddingResult)
    chunks = [chunk async for chunk in reply]
    assert len(chunks) == 2
    after = await store.peek(entries, 0)
    assert after.tokens is not None
    assert after.tokens.remaining == 10_000 - 100


async def test_the_output_allowance_is_capped_and_defaults_to_the_cap() -> None:
    clock = FakeClock()
    store = MemoryClientLimits(clock)
    entries = [(KEY, ClientLimits(tpm=100_000))]
    stage = ClientRateLimit(store, limits(entries), TokenCounter(), max_output_tokens=1000)
    calls: list[RequestContext] = []
    unbounded = context({"model": "chat", "messages": [{"role": "user", "content": "Hi"}]})
    greedy = context({**unbounded.body, "max_tokens": 50_000})

    async def hold(ctx: RequestContext) -> Reply:
        calls.append(ctx)
        # Look at the booking while the request is in flight.
        peeked = await store.peek(entries, 0)
        assert peeked.tokens is not None
        booked.append(100_000 - peeked.tokens.remaining)
        return ChatResult({"choices": []}, Usage(0, 0))

    booked: list[int] = []
    prompt = prompt_tokens(TokenCounter(), unbounded.body)
    await pipeline(stage, hold).run(unbounded)
    await stage.drain()  # settlements run off the response path
    await pipeline(stage, hold).run(greedy)
    await stage.drain()  # settlements run off the response path
    assert booked == [prompt + 1000, prompt + 1000]
