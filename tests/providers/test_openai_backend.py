"""The OpenAI-compatible backend: per-phase timeouts and upstream failures, mapped once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from seawall.config.schema import Deployment, Timeouts
from seawall.errors import (
    ContextWindowExceeded,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from seawall.providers.http_transport import HttpTransport
from seawall.providers.openai_compat import OpenAIBackend, map_error
from seawall.simulator import (
    Fault,
    FaultKind,
    RunningSimulator,
    SimulatorProfile,
    running_simulator,
)
from seawall.tokens import TokenCounter
from tests.ports import free_port

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


def deployment(api_base: str, **timeouts: float) -> Deployment:
    return Deployment(
        name="sim",
        provider="openai",
        model="gpt-4o-mini",
        api_base=api_base,
        timeouts=Timeouts(**{"connect": 1, "first_byte": 2, "between_chunks": 2, **timeouts}),
    )


@pytest.fixture
async def backend() -> AsyncIterator[OpenAIBackend]:
    backend = OpenAIBackend(HttpTransport(), TokenCounter())
    yield backend
    await backend.aclose()


@pytest.fixture
async def simulator() -> AsyncIterator[RunningSimulator]:
    async with running_simulator() as sim:
        yield sim


async def test_answers_and_streams_with_usage(
    backend: OpenAIBackend, simulator: RunningSimulator
) -> None:
    target = deployment(simulator.openai_base_url)
    result = await backend.chat(target, CHAT)
    assert result.body["choices"][0]["message"]["content"]
    assert result.usage.completion_tokens > 0 and not result.usage.estimated
    stream = await backend.open_stream(target, {**CHAT, "stream": True})
    chunks = [chunk async for chunk in stream]
    # Usage is asked for upstream but not shown to a client that did not ask for it.
    assert all(chunk.get("usage") is None for chunk in chunks)
    assert stream.usage.completion_tokens == result.usage.completion_tokens


async def test_silence_before_headers_is_a_first_byte_timeout(
    backend: OpenAIBackend, simulator: RunningSimulator
) -> None:
    simulator.faults.arm(Fault(FaultKind.HANG, times=1))
    with pytest.raises(UpstreamTimeout, match="response headers"):
        await backend.chat(deployment(simulator.openai_base_url, first_byte=0.3), CHAT)


async def test_silence_between_chunks_is_a_stream_timeout() -> None:
    slow = SimulatorProfile(tokens_per_second=1, output_tokens=5)
    async with running_simulator(slow) as sim:
        backend = OpenAIBackend(HttpTransport(), TokenCounter())
        try:
            stream = await backend.open_stream(
                deployment(sim.openai_base_url, between_chunks=0.3), {**CHAT, "stream": True}
            )
            with pytest.raises(UpstreamTimeout, match="stream"):
                async for _ in stream:
                    pass
        finally:
            await backend.aclose()


async def test_429_keeps_the_upstreams_retry_after(
    backend: OpenAIBackend, simulator: RunningSimulator
) -> None:
    simulator.faults.arm(Fault(FaultKind.RATE_LIMIT, times=1, retry_after=3))
    with pytest.raises(UpstreamRateLimited) as caught:
        await backend.chat(deployment(simulator.openai_base_url), CHAT)
    assert caught.value.retry_after == 3
    assert caught.value.headers()["retry-after"] == "3"


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        (FaultKind.SERVER_ERROR, UpstreamError),
        (FaultKind.UNAVAILABLE, UpstreamUnavailable),
        (FaultKind.RESET_BEFORE_FIRST_BYTE, UpstreamError),
        (FaultKind.MALFORMED_JSON, UpstreamProtocolError),
    ],
)
async def test_upstream_failures_map_to_upstream_errors(
    backend: OpenAIBackend, simulator: RunningSimulator, kind: FaultKind, error: type[Exception]
) -> None:
    simulator.faults.arm(Fault(kind, times=1))
    with pytest.raises(error):
        await backend.chat(deployment(simulator.openai_base_url), CHAT)
    # The next request is served normally: the failure did not poison the pool.
    assert (await backend.chat(deployment(simulator.openai_base_url), CHAT)).body["choices"]


async def test_a_stream_reset_midway_raises_instead_of_ending_quietly(
    backend: OpenAIBackend, simulator: RunningSimulator
) -> None:
    simulator.faults.arm(Fault(FaultKind.RESET_MID_STREAM, times=1))
    stream = await backend.open_stream(
        deployment(simulator.openai_base_url), {**CHAT, "stream": True}
    )
    received = []
    with pytest.raises(UpstreamError):
        async for chunk in stream:
            received.append(chunk)
    assert received, "the chunks sent before the reset were relayed"


async def test_nothing_listening_is_unavailable(backend: OpenAIBackend) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(UpstreamUnavailable, match="Could not connect"):
        await backend.chat(deployment(closed), CHAT)


def _proxy(headers: dict[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(headers))


def test_context_length_errors_are_told_apart_for_the_context_fallback() -> None:
    deployment = Deployment(name="d", provider="openai", model="m")
    body = b'{"error": {"message": "too long", "code": "context_length_exceeded"}}'
    error = map_error(deployment, 400, _proxy({}), body)
    assert isinstance(error, ContextWindowExceeded)
    assert error.openai_body()["error"]["code"] == "context_length_exceeded"


def test_an_exhausted_quota_keeps_its_code_so_the_deployment_is_parked() -> None:
    deployment = Deployment(name="d", provider="openai", model="m")
    body = b'{"error": {"message": "You exceeded your quota", "code": "insufficient_quota"}}'
    error = map_error(deployment, 429, _proxy({"retry-after": "20"}), body)
    assert isinstance(error, UpstreamRateLimited)
    assert (error.code, error.retry_after) == ("insufficient_quota", 20.0)


async def test_cookies_an_upstream_sets_are_never_sent_on_later_requests(
    backend: OpenAIBackend,
) -> None:
    # One pooled session serves every client: a cookie from one answer must not ride
    # along on the next client's request.
    cookies_seen: list[str | None] = []

    async def chat(request: web.Request) -> web.Response:
        cookies_seen.append(request.headers.get("Cookie"))
        answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}]}
        response = web.json_response(answer)
        response.set_cookie("session", "tenant-a-secret")
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        # A host name: cookie jars keep no cookies from bare IP addresses.
        upstream = deployment(f"http://localhost:{port}/v1")
        await backend.chat(upstream, CHAT)
        await backend.chat(upstream, CHAT)
    finally:
        await runner.cleanup()
    assert cookies_seen == [None, None]
