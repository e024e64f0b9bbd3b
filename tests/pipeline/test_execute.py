"""The fallback loop against real simulators, with an injected clock (no real waiting).

Two simulators stand for two upstreams: ``primary`` and ``backup``. Their own request
counts tell what Seawall sent where.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from seawall.config import load_settings
from seawall.errors import (
    CapacityExhausted,
    ContextWindowExceeded,
    DeadlineExceeded,
    InvalidRequest,
    UpstreamRejected,
    UpstreamUnavailable,
)
from seawall.pipeline.context import Identity, RequestContext
from seawall.pipeline.execute import Resilience
from seawall.pipeline.pipeline import Pipeline, Reply
from seawall.providers.base import ChatResult
from seawall.resilience.admission import Admission
from seawall.resilience.circuit_breaker import BreakerState
from seawall.services import build_backends, build_pipeline, build_resilience, model_table
from seawall.simulator import RunningSimulator, SimulatorProfile, running_simulator
from seawall.simulator.faults import Fault, FaultKind
from seawall.stores.records import RequestRecord
from seawall.tenancy.costs import PriceBook
from seawall.tokens import TokenCounter
from tests.pipeline.master_key import master_key_only
from tests.resilience.fake_clock import FakeClock

KEY = "sk-seawall-execute-test-key"
CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
STREAM = {**CHAT, "stream": True}
COMPLETIONS = "/v1/chat/completions"


class Sink:
    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    def submit(self, record: RequestRecord) -> None:
        self.records.append(record)


@dataclass
class Harness:
    pipeline: Pipeline
    sink: Sink
    clock: FakeClock
    primary: RunningSimulator
    backup: RunningSimulator
    resilience: Resilience

    async def run(self, body: object = CHAT, *, deadline: float | None = None) -> Reply:
        ctx = RequestContext(
            request_id=f"req_{len(self.sink.records)}",
            protocol="openai",
            operation="chat",
            raw_body=orjson.dumps(body),
            identity=Identity(api_key=KEY),
            deadline=deadline,
        )
        self.last = ctx
        return await self.pipeline.run(ctx)

    def sent(self, sim: RunningSimulator) -> int:
        return sim.stats.requests[COMPLETIONS]


BREAKER = "{min_requests: 4, failure_rate: 0.5, open_seconds: 30}"


def config(primary: str, backup: str, extra: str = "", breaker: str = BREAKER) -> str:
    return f"""
local_models: false
resilience:
  max_attempts: 3
  breaker: {breaker}
deployments:
  primary:
    provider: openai
    model: gpt-primary
    api_base: "{primary}/v1"
    timeouts: {{connect: 1, first_byte: 0.5, between_chunks: 1, total: 5}}
  backup:
    provider: openai
    model: gpt-backup
    api_base: "{backup}/v1"
    timeouts: {{connect: 1, first_byte: 2, between_chunks: 2, total: 5}}
{extra}
"""


@asynccontextmanager
async def built(
    tmp_path: Path,
    models: str = "models:\n  chat: [primary, backup]\n  primary: [primary]\n",
    primary_extra: str = "",
    breaker: str = BREAKER,
    primary_key: str | None = None,
) -> AsyncIterator[Harness]:
    """Two simulators and a pipeline over them; ``primary_extra`` adds lines to primary."""
    profile = SimulatorProfile(output_tokens=8)
    primary_profile = SimulatorProfile(output_tokens=8, api_key=primary_key)
    async with (
        running_simulator(primary_profile) as primary,
        running_simulator(profile) as backup,
    ):
        path = tmp_path / "seawall.yaml"
        text = config(primary.url, backup.url, models, breaker)
        path.write_text(
            text.replace("    model: gpt-primary\n", "    model: gpt-primary\n" + primary_extra)
        )
        settings = load_settings(path, {})
        clock = FakeClock()
        counter = TokenCounter()
        backends = build_backends(counter)
        resilience = build_resilience(settings, counter, None, clock)
        admission = Admission(settings.resilience.admission, clock)
        sink = Sink()
        pipeline = build_pipeline(
            master_key_only(KEY),
            sink,
            admission,
            model_table(settings, backends),
            backends,
            resilience,
            PriceBook(settings.deployments),
        )
        try:
            yield Harness(pipeline, sink, clock, primary, backup, resilience)
        finally:
            for backend in backends.values():
                await backend.aclose()


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with built(tmp_path) as ready:
        yield ready


def unavailable(times: int | None = None) -> Fault:
    return Fault(FaultKind.UNAVAILABLE, times=times)


async def test_a_failing_primary_falls_back_and_says_so(harness: Harness) -> None:
    harness.primary.faults.arm(unavailable())
    reply = await harness.run()
    assert isinstance(reply, ChatResult)
    assert harness.last.response_headers["x-seawall-deployment"] == "backup"
    assert harness.last.response_headers["x-seawall-fallback"] == "primary,backup"
    (record,) = harness.sink.records
    assert (record.status_code, record.deployment, record.attempts) == (
        200,
        "backup",
        "primary:503,backup:200",
    )


async def test_a_429_is_retried_after_the_upstreams_wait(harness: Harness) -> None:
    # One deployment only: the polite wait, then the same provider answers.
    harness.primary.faults.arm(Fault(FaultKind.RATE_LIMIT, times=1, retry_after=2))
    reply = await harness.run({**CHAT, "model": "primary"})
    assert isinstance(reply, ChatResult)
    assert harness.sent(harness.primary) == 2
    assert max(harness.clock.sleeps) >= 2.0
    assert harness.sink.records[-1].attempts == "primary:429,primary:200"


async def test_client_errors_are_answered_at_once_without_retry(harness: Harness) -> None:
    with pytest.raises(InvalidRequest):
        await harness.run({**CHAT, "max_tokens": -5, "model": "chat"})
    assert harness.sent(harness.primary) + harness.sent(harness.backup) <= 1


async def test_an_open_circuit_skips_the_primary_without_calling_it(harness: Harness) -> None:
    harness.primary.faults.arm(unavailable())
    for _ in range(4):
        await harness.run()
    calls_while_closing = harness.sent(harness.primary)
    resilience = harness.resilience
    assert (
        await resilience.breakers.state("primary", resilience.settings.breaker) is BreakerState.OPEN
    )
    for _ in range(5):
        reply = await harness.run()
        assert isinstance(reply, ChatResult)
    assert harness.sent(harness.primary) == calls_while_closing
    assert harness.sink.records[-1].attempts == "backup:200"


async def test_when_everything_fails_the_client_gets_503_with_retry_after(
    harness: Harness,
) -> None:
    harness.primary.faults.arm(unavailable())
    harness.backup.faults.arm(unavailable())
    with pytest.raises(UpstreamUnavailable) as caught:
        await harness.run()
    assert caught.value.headers()["retry-after"].isdigit()
    # Three attempts in all, never more, whatever the number of deployments.
    assert harness.sent(harness.primary) + harness.sent(harness.backup) == 3


async def test_a_hanging_upstream_times_out_and_falls_back(harness: Harness) -> None:
    harness.primary.faults.arm(Fault(FaultKind.HANG, times=1))
    reply = await harness.run()
    assert isinstance(reply, ChatResult)
    assert harness.sink.records[-1].attempts == "primary:504,backup:200"


async def test_a_reset_before_the_first_byte_falls_back(harness: Harness) -> None:
    harness.primary.faults.arm(Fault(FaultKind.RESET_BEFORE_FIRST_BYTE, times=1))
    reply = await harness.run(STREAM)
    chunks = [chunk async for chunk in reply]  # type: ignore[union-attr]
    assert chunks
    assert harness.last.response_headers["x-seawall-deployment"] == "backup"


async def test_a_slow_first_token_falls_back_before_the_client_sees_a_byte(
    harness: Harness,
) -> None:
    harness.primary.faults.arm(Fault(FaultKind.SLOW, times=1, seconds=1.5))
    reply = await harness.run(STREAM)
    assert not isinstance(reply, ChatResult)
    chunks = [chunk async for chunk in reply]  # type: ignore[union-attr]
    assert chunks
    assert harness.last.attempts == ["primary:504", "backup:200"]


async def test_a_stream_that_breaks_after_its_first_byte_is_not_retried(
    harness: Harness,
) -> None:
    harness.primary.faults.arm(Fault(FaultKind.RESET_MID_STREAM, times=1))
    reply = await harness.run(STREAM)
    received = []
    with pytest.raises(Exception):  # noqa: B017 - the upstream's broken stream
        async for chunk in reply:  # type: ignore[union-attr]
            received.append(chunk)
    assert received
    assert harness.sent(harness.primary) == 1
    assert harness.sent(harness.backup) == 0


async def test_a_prompt_too_long_for_the_window_goes_to_the_context_fallback(
    tmp_path: Path,
) -> None:
    models = (
        "models:\n  chat: {deployments: [primary], context_fallback: large}\n"
        "  large: [backup]\n  primary: [primary]\n"
    )
    async with built(tmp_path, models, "    context_window: 64\n") as harness:
        long_prompt = {**CHAT, "messages": [{"role": "user", "content": "word " * 200}]}
        reply = await harness.run(long_prompt)
        assert isinstance(reply, ChatResult)
        assert harness.last.response_headers["x-seawall-model"] == "large"
        assert harness.sent(harness.primary) == 0
        # Without a context fallback, the client is told what to do.
        with pytest.raises(ContextWindowExceeded, match="context_fallback"):
            await harness.run({**long_prompt, "model": "primary"})


async def test_retries_stay_within_the_retry_budget_during_an_outage(tmp_path: Path) -> None:
    # A breaker that never opens, so every request reaches the failing upstream.
    async with built(tmp_path, breaker="{min_requests: 1000000}") as harness:
        harness.primary.faults.arm(unavailable())
        requests = 100
        for _ in range(requests):
            with pytest.raises(UpstreamUnavailable):
                await harness.run({**CHAT, "model": "primary"})
        # Each request may try 3 times; the budget allows 20% more plus one per second.
        seconds = harness.clock.now() - 1000.0
        assert requests < harness.sent(harness.primary) <= requests * 1.2 + seconds + 10


async def test_a_passed_deadline_ends_the_request_with_504(harness: Harness) -> None:
    harness.primary.faults.arm(Fault(FaultKind.HANG, times=1))
    with pytest.raises(DeadlineExceeded):
        await harness.run({**CHAT, "model": "primary"}, deadline=harness.clock.now() + 0.2)


async def test_capacity_exhausted_is_a_429_with_retry_after(tmp_path: Path) -> None:
    limits = "    limits: {rpm: 60, burst_seconds: 0.01}\n"
    async with built(tmp_path, "models:\n  chat: [primary]\n", limits) as harness:
        clock = harness.clock
        assert isinstance(await harness.run(deadline=clock.now() + 5), ChatResult)
        # The next slot is a second away: a request that can wait that long gets it.
        assert isinstance(await harness.run(deadline=clock.now() + 5), ChatResult)
        assert max(clock.sleeps) == pytest.approx(1.0, abs=0.05)
        # One that cannot is refused at once, and told when to come back.
        with pytest.raises(CapacityExhausted) as caught:
            await harness.run(deadline=clock.now() + 0.5)
        assert caught.value.status == 429
        assert caught.value.headers()["retry-after"] == "1"
        assert harness.sent(harness.primary) == 2


async def test_a_deployment_that_refuses_seawalls_key_is_not_asked_again(tmp_path: Path) -> None:
    # The primary wants a key Seawall does not have: 401, whatever the request.
    models = "models:\n  chat: [primary, backup]\n  primary: [primary]\n"
    async with built(tmp_path, models, primary_key="sk-not-ours") as harness:
        reply = await harness.run()
        assert isinstance(reply, ChatResult)
        assert harness.sink.records[-1].attempts == "primary:502,backup:200"
        with pytest.raises(UpstreamRejected, match="credentials"):
            await harness.run({**CHAT, "model": "primary"})
        # Asked once for that request, with two attempts left: retrying cannot help.
        assert harness.primary.stats.answered[401] == 2
