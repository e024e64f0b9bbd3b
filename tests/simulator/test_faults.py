"""Each injected fault, as the real SDKs experience it."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from seawall.simulator import (
    Fault,
    FaultKind,
    RunningSimulator,
    SimulatorProfile,
    running_simulator,
)
from tests.simulator.clients import async_anthropic, async_openai, sync_openai

QUESTION = [{"role": "user", "content": "Is the upstream healthy?"}]


async def _ask(client: openai.AsyncOpenAI, model: str = "m") -> str:
    reply = await client.chat.completions.create(model=model, messages=QUESTION)
    return reply.choices[0].message.content or ""


async def test_rate_limit_is_a_429_with_retry_headers_then_clears(
    simulator: RunningSimulator,
) -> None:
    simulator.faults.arm(Fault(FaultKind.RATE_LIMIT, times=2, retry_after=1.5))
    client = async_openai(simulator)
    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as caught:
            await _ask(client)
    headers = caught.value.response.headers
    assert headers["retry-after"] == "2"
    assert headers["retry-after-ms"] == "1500"
    assert headers["x-ratelimit-limit-requests"] == "60"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"] == "1.5s"
    assert caught.value.body["type"] == "rate_limit_error"  # type: ignore[index]
    assert caught.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
    assert await _ask(client)


@pytest.mark.parametrize(("kind", "status"), [("server_error", 500), ("unavailable", 503)])
async def test_server_errors_have_their_status(
    simulator: RunningSimulator, kind: str, status: int
) -> None:
    simulator.faults.arm(Fault(FaultKind(kind), times=1))
    with pytest.raises(openai.InternalServerError) as caught:
        await _ask(async_openai(simulator))
    assert caught.value.status_code == status
    assert set(caught.value.body) == {"message", "type", "param", "code"}  # type: ignore[arg-type]


async def test_reset_before_first_byte_is_a_connection_error(simulator: RunningSimulator) -> None:
    simulator.faults.arm(Fault(FaultKind.RESET_BEFORE_FIRST_BYTE, times=1))
    client = async_openai(simulator)
    with pytest.raises(openai.APIConnectionError) as caught:
        await _ask(client)
    assert not isinstance(caught.value, openai.APITimeoutError)
    assert await _ask(client)


async def test_reset_mid_stream_breaks_the_stream_after_some_chunks(
    simulator: RunningSimulator,
) -> None:
    simulator.faults.arm(Fault(FaultKind.RESET_MID_STREAM, times=2))
    client = async_openai(simulator)
    received: list[str] = []
    stream = await client.chat.completions.create(model="m", messages=QUESTION, stream=True)
    with pytest.raises(openai.APIConnectionError) as caught:
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert len(received) >= 2
    assert ConnectionResetError in _causes(caught.value)
    with pytest.raises(openai.APIConnectionError):
        await _ask(client)


async def test_anthropic_stream_breaks_mid_way(simulator: RunningSimulator) -> None:
    simulator.faults.arm(Fault(FaultKind.RESET_MID_STREAM, times=1))
    client = async_anthropic(simulator)
    events: list[str] = []
    # This SDK lets the transport's read error through mid-stream rather than wrapping it.
    with pytest.raises(Exception) as caught:
        async with client.messages.stream(model="c", max_tokens=64, messages=QUESTION) as stream:
            async for event in stream:
                events.append(event.type)
    assert ConnectionResetError in _causes(caught.value)
    assert events[0] == "message_start"
    assert "message_stop" not in events


def _causes(error: BaseException) -> list[type[BaseException]]:
    chain: list[type[BaseException]] = []
    current: BaseException | None = error
    while current is not None and len(chain) < 20:
        chain.append(type(current))
        current = current.__cause__ or current.__context__
    return chain


async def test_malformed_json_fails_to_parse(simulator: RunningSimulator) -> None:
    simulator.faults.arm(Fault(FaultKind.MALFORMED_JSON, times=2))
    client = async_openai(simulator)
    with pytest.raises(json.JSONDecodeError):
        await _ask(client)
    stream = await client.chat.completions.create(model="m", messages=QUESTION, stream=True)
    received = 0
    with pytest.raises(json.JSONDecodeError):
        async for _ in stream:
            received += 1
    assert received >= 1


async def test_hang_never_answers(simulator: RunningSimulator) -> None:
    simulator.faults.arm(Fault(FaultKind.HANG, times=1))
    client = async_openai(simulator, timeout=0.3)
    with pytest.raises(openai.APITimeoutError):
        await _ask(client)
    simulator.faults.arm(Fault(FaultKind.HANG, times=1, seconds=0.05))
    with pytest.raises(openai.APIConnectionError) as caught:
        await _ask(async_openai(simulator))
    assert not isinstance(caught.value, openai.APITimeoutError)


async def test_slow_and_latency_outlast_a_short_client_timeout(
    simulator: RunningSimulator,
) -> None:
    simulator.faults.arm(Fault(FaultKind.SLOW, times=1, seconds=5))
    client = async_openai(simulator, timeout=0.3)
    with pytest.raises(openai.APITimeoutError):
        await _ask(client)
    assert await _ask(client)

    async with running_simulator(SimulatorProfile(latency_ms=5000)) as slow:
        with pytest.raises(openai.APITimeoutError):
            await _ask(async_openai(slow, timeout=0.3))


async def test_time_to_first_token_passes_after_the_headers() -> None:
    async with running_simulator(SimulatorProfile(ttft_ms=5000)) as sim:
        client = async_openai(sim, timeout=0.3)
        stream = await client.chat.completions.create(model="m", messages=QUESTION, stream=True)
        with pytest.raises(openai.APITimeoutError):
            async for _ in stream:
                pass


async def test_paced_stream_still_delivers_everything() -> None:
    async with running_simulator(SimulatorProfile(tokens_per_second=2000)) as sim:
        client = async_openai(sim)
        whole = await _ask(client)
        stream = await client.chat.completions.create(model="m", messages=QUESTION, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == whole


async def test_faults_can_target_one_model(simulator: RunningSimulator) -> None:
    simulator.faults.arm(Fault(FaultKind.SERVER_ERROR, model="flaky"))
    client = async_openai(simulator)
    assert await _ask(client, "steady")
    for _ in range(3):
        with pytest.raises(openai.InternalServerError):
            await _ask(client, "flaky")
    assert simulator.stats.as_json()["faults"] == {"server_error": 3}


async def test_profile_faults_are_armed_at_start() -> None:
    profile = SimulatorProfile(faults=(Fault(FaultKind.UNAVAILABLE, times=1),))
    async with running_simulator(profile) as sim:
        client = async_openai(sim)
        with pytest.raises(openai.InternalServerError):
            await _ask(client)
        assert await _ask(client)


async def test_control_api_arms_lists_clears_and_counts(simulator: RunningSimulator) -> None:
    client = async_openai(simulator)
    async with httpx.AsyncClient(base_url=simulator.url) as http:
        armed = await http.post(
            "/_simulator/faults",
            json={"fault": "rate_limit", "times": 2, "retry_after": 1.5, "model": "m"},
        )
        assert armed.status_code == 200
        assert armed.json()["armed"][0]["remaining"] == 2
        with pytest.raises(openai.RateLimitError):
            await _ask(client)
        listed = (await http.get("/_simulator/faults")).json()
        assert listed["armed"][0]["remaining"] == 1
        assert (await http.delete("/_simulator/faults")).json() == {"armed": []}
        assert await _ask(client)
        await client.embeddings.create(model="e", input="x")

        stats = (await http.get("/_simulator/stats")).json()
        assert stats["requests"] == {"/v1/chat/completions": 2, "/v1/embeddings": 1}
        assert stats["faults"] == {"rate_limit": 1}
        assert stats["answered"] == {"200": 2, "429": 1}
        bad = await http.post("/_simulator/faults", json={"fault": "gremlins"})
        assert bad.status_code == 400
        assert bad.json()["error"]["param"] == "fault"
        await http.delete("/_simulator/stats")
        cleared = (await http.get("/_simulator/stats")).json()
        assert (cleared["requests"], cleared["faults"], cleared["answered"]) == ({}, {}, {})


def test_sync_client_sees_faults_armed_over_http(threaded_simulator: RunningSimulator) -> None:
    httpx.post(
        threaded_simulator.url + "/_simulator/faults",
        json=[
            {"fault": "rate_limit", "times": 1},
            {"fault": "reset_before_first_byte", "times": 1},
        ],
    ).raise_for_status()
    client = sync_openai(threaded_simulator)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="m", messages=QUESTION)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=QUESTION)
    assert client.chat.completions.create(model="m", messages=QUESTION).choices
