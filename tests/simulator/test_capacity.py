"""The simulator's capacity limit refuses requests over its rate as a provider would."""

from __future__ import annotations

import argparse

import anthropic
import httpx
import openai
import pytest

from seawall.cli import simulate
from seawall.simulator import (
    Fault,
    FaultKind,
    SimulatorContext,
    SimulatorProfile,
    running_simulator,
)
from seawall.simulator.capacity import TokenBucket
from tests.simulator.clients import async_anthropic, async_openai


class _FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: float = 100.0) -> None:
        self.time = start

    def __call__(self) -> float:
        return self.time


async def _ask(client: openai.AsyncOpenAI) -> str | None:
    reply = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}]
    )
    return reply.choices[0].message.content


def test_bucket_admits_a_burst_then_says_how_long_to_wait() -> None:
    clock = _FakeClock()
    bucket = TokenBucket(rate=2.0, burst=3.0, now=clock)
    assert [bucket.take() for _ in range(3)] == [None, None, None]
    assert bucket.take() == pytest.approx(0.5)
    clock.time += 0.2
    assert bucket.take() == pytest.approx(0.3)


def test_bucket_refills_at_its_rate_and_refusals_take_nothing() -> None:
    clock = _FakeClock()
    bucket = TokenBucket(rate=4.0, burst=1.0, now=clock)
    assert bucket.take() is None
    # Retrying early, however often, does not push the next admission further away.
    for _ in range(5):
        assert bucket.take() == pytest.approx(0.25)
    clock.time += 0.25
    assert bucket.take() is None
    assert bucket.take() == pytest.approx(0.25)


def test_bucket_never_holds_more_than_its_burst() -> None:
    clock = _FakeClock()
    bucket = TokenBucket(rate=10.0, burst=2.0, now=clock)
    clock.time += 3600
    assert [bucket.take() for _ in range(3)][:2] == [None, None]
    assert bucket.take() is not None


@pytest.mark.parametrize(
    ("rate", "burst"), [(0.0, 1.0), (-1.0, 1.0), (float("inf"), 1.0), (1.0, 0.5), (1.0, 0.0)]
)
def test_bucket_refuses_a_rate_or_burst_that_could_never_admit(rate: float, burst: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=rate, burst=burst)


def test_profile_defaults_the_burst_to_a_tenth_of_the_rate_and_validates() -> None:
    assert SimulatorProfile(capacity_rps=50).effective_capacity_burst == 5
    assert SimulatorProfile(capacity_rps=2).effective_capacity_burst == 1
    assert SimulatorProfile(capacity_rps=2, capacity_burst=4).effective_capacity_burst == 4
    for bad in (
        {"capacity_rps": -1.0},
        {"capacity_rps": float("nan")},
        {"capacity_rps": 1.0, "capacity_burst": 0.0},
        {"capacity_burst": 3.0},
    ):
        with pytest.raises(ValueError):
            SimulatorProfile(**bad)  # type: ignore[arg-type]


def test_refusals_answer_as_rate_limit_before_armed_faults_are_taken() -> None:
    clock = _FakeClock()
    profile = SimulatorProfile(
        capacity_rps=1, capacity_burst=1, faults=(Fault(FaultKind.SERVER_ERROR, times=1),)
    )
    context = SimulatorContext.build(profile, now=clock, wall_clock=lambda: 1_700_000_000.0)
    assert context.admit("/v1/chat/completions", "m") == Fault(FaultKind.SERVER_ERROR, times=1)
    refused = context.admit("/v1/chat/completions", "m")
    assert refused is not None and refused.kind is FaultKind.RATE_LIMIT
    assert refused.retry_after == pytest.approx(1.0)
    clock.time += 1.0
    # The refusal left the bucket and the (already used up) schedule as they were.
    assert context.admit("/v1/chat/completions", "m") is None
    stats = context.stats.as_json()
    assert stats["requests"] == {"/v1/chat/completions": 3}
    assert stats["faults"] == {"server_error": 1, "rate_limit": 1}
    assert stats["capacity_refusals"] == 1
    assert stats["last_request_at"] == 1_700_000_000.0


async def test_openai_client_gets_429_with_retry_headers_once_the_burst_is_spent() -> None:
    # 0.25 rps: a token takes 4 s to come back, far longer than this test runs.
    profile = SimulatorProfile(capacity_rps=0.25, capacity_burst=2)
    async with running_simulator(profile) as sim:
        client = async_openai(sim)
        assert await _ask(client)
        assert await _ask(client)
        with pytest.raises(openai.RateLimitError) as refused:
            await _ask(client)
        headers = refused.value.response.headers
        retry_after = int(headers["retry-after"])
        retry_after_ms = int(headers["retry-after-ms"])
        assert 1 <= retry_after <= 4
        assert 0 < retry_after_ms <= 4000
        assert retry_after * 1000 >= retry_after_ms
        assert refused.value.code == "rate_limit_exceeded"

        async with httpx.AsyncClient(base_url=sim.url) as http:
            stats = (await http.get("/_simulator/stats")).json()
            assert stats["requests"] == {"/v1/chat/completions": 3}
            assert stats["faults"] == {"rate_limit": 1}
            assert stats["capacity_refusals"] == 1
            assert stats["answered"] == {"200": 2, "429": 1}
            assert isinstance(stats["last_request_at"], float)
            await http.delete("/_simulator/stats")
            cleared = (await http.get("/_simulator/stats")).json()
        assert cleared["answered"] == {}
        assert cleared["capacity_refusals"] == 0
        assert cleared["last_request_at"] is None


async def test_anthropic_client_gets_rate_limit_error_over_capacity() -> None:
    async with running_simulator(SimulatorProfile(capacity_rps=0.25, capacity_burst=1)) as sim:
        client = async_anthropic(sim)

        async def ask() -> object:
            return await client.messages.create(
                model="claude", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
            )

        assert await ask()
        with pytest.raises(anthropic.RateLimitError) as refused:
            await ask()
    body = refused.value.response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "rate_limit_error"
    assert int(refused.value.response.headers["retry-after"]) >= 1
    assert "retry-after-ms" in refused.value.response.headers
    assert sim.stats.capacity_refusals == 1


def test_cli_options_feed_the_capacity_and_bad_values_are_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser(prog="seawall")
    simulate.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["simulate", "--capacity-rps", "20", "--capacity-burst", "4"])
    assert (args.capacity_rps, args.capacity_burst) == (20.0, 4.0)
    assert parser.parse_args(["simulate"]).capacity_rps == 0.0
    for bad in (["--capacity-rps", "-1"], ["--capacity-burst", "0.5"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["simulate", *bad])
    # A burst without a rate is refused before anything listens.
    assert simulate.run(parser.parse_args(["simulate", "--capacity-burst", "3"])) == 2
    assert "capacity_burst needs capacity_rps" in capsys.readouterr().err


async def test_answered_leaves_out_connections_reset_before_the_headers() -> None:
    async with running_simulator() as sim:
        sim.faults.arm(Fault(FaultKind.RESET_BEFORE_FIRST_BYTE, times=1))
        client = async_openai(sim)
        with pytest.raises(openai.APIConnectionError):
            await _ask(client)
        assert await _ask(client)
        assert sim.stats.as_json()["answered"] == {"200": 1}
