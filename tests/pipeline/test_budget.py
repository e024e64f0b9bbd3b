"""The budget stage: which budgets cover a request, refusals, and settling however it ends.

The rest of the pipeline is a fake ``call_next`` returning a ``ChatResult`` or a stream;
the store is the real in-memory one on an injected wall clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from seawall.errors import BudgetExhausted, UpstreamTimeout
from seawall.pipeline.budget import Budget
from seawall.pipeline.context import Identity, RequestContext
from seawall.pipeline.pipeline import Handler, Reply
from seawall.providers.base import ChatResult, JSONObject, Usage
from seawall.tenancy.budgets import (
    BudgetRule,
    BudgetTemplate,
    Charge,
    MemoryBudgetStore,
    Reservation,
    Scope,
    SoftLimitCrossed,
)
from seawall.tenancy.principal import Principal
from tests.tenancy.wall_clock import FakeWallClock, utc

ANSWER = ChatResult(body={"object": "chat.completion"}, usage=Usage(10, 20))
# What the fake price list charges: a cent per completion token, ten cents at most.
MAX_COST = 0.10


def actual_cost(ctx: RequestContext) -> float:
    """A cent per completion token of the usage the stage put on the context."""
    return 0.0 if ctx.usage is None else ctx.usage.completion_tokens * 0.01


class Rules:
    """Budget rules as the cache serves them."""

    def __init__(self, *rules: BudgetRule) -> None:
        self._rules = rules

    def rules_for(self, scope: Scope, subject: str) -> Sequence[BudgetRule]:
        return [rule for rule in self._rules if (rule.scope, rule.subject) == (scope, subject)]


class UntouchableStore:
    """A store that fails the test if the stage uses it."""

    async def reserve(self, charges: Sequence[Charge], amount_usd: float) -> Reservation:
        raise AssertionError("the store was asked to reserve")

    async def settle(self, reservation: Reservation, actual: float) -> tuple[SoftLimitCrossed]:
        raise AssertionError("the store was asked to settle")

    async def spent(self, charge: Charge) -> float:
        raise AssertionError("the store was asked for spend")


def context(
    *,
    tier: str = "verified",
    tenant: str = "acme",
    key: str = "key_1",
    user: str | None = None,
    session: str | None = None,
    feature: str | None = None,
    body: dict[str, Any] | None = None,
) -> RequestContext:
    """A request from one key of one tenant."""
    return RequestContext(
        request_id="req_test",
        protocol="openai",
        operation="chat",
        raw_body=b"{}",
        identity=Identity(user=user, session_id=session, feature=feature),
        principal=Principal(key_id=key, tenant_id=tenant, tier=tier),
        body=body or {},
    )


async def answer(ctx: RequestContext) -> Reply:
    """The rest of the pipeline: a complete answer of 20 completion tokens."""
    return ANSWER


def stage(
    *rules: BudgetRule,
    store: Any = None,
    clock: FakeWallClock | None = None,
    **options: Any,
) -> tuple[Budget, MemoryBudgetStore]:
    """The stage over a memory store with ``rules``."""
    clock = clock or FakeWallClock()
    memory = MemoryBudgetStore(clock)
    budget = Budget(
        Rules(*rules),
        store or memory,
        lambda ctx: MAX_COST,
        actual_cost,
        wall_clock=clock,
        **options,
    )
    return budget, memory


def settled(budget: Budget, handler: Handler) -> Handler:
    """``handler``, then the wait for its settlement (which runs off the response path)."""

    async def run(ctx: RequestContext) -> Reply:
        try:
            return await handler(ctx)
        finally:
            await budget.drain()

    return run


KEY_DAILY = BudgetRule("key", "key_1", "daily", hard_usd=1.0)


async def test_a_request_no_budget_covers_never_reaches_the_store() -> None:
    budget, _ = stage(BudgetRule("key", "key_2", "daily", hard_usd=0.0), store=UntouchableStore())
    handler = settled(budget, budget.wrap(answer))
    assert await handler(context(user="alice", session="s1", feature="search")) is ANSWER


async def test_an_answer_is_charged_its_actual_cost() -> None:
    budget, memory = stage(KEY_DAILY)
    ctx = context()

    assert await budget.wrap(answer)(ctx) is ANSWER

    assert ctx.usage == ANSWER.usage
    await budget.drain()
    assert await memory.spent(Charge(KEY_DAILY)) == pytest.approx(0.20)


async def test_a_spent_hard_budget_answers_insufficient_quota_until_midnight() -> None:
    clock = FakeWallClock("2026-03-15T22:00:00")
    budget, _ = stage(KEY_DAILY, clock=clock)
    handler = settled(budget, budget.wrap(answer))
    for _ in range(5):
        await handler(context())  # 5 x 0.20 = the whole dollar
    called = False

    async def must_not_run(ctx: RequestContext) -> Reply:
        nonlocal called
        called = True
        return ANSWER

    with pytest.raises(BudgetExhausted) as refused:
        await budget.wrap(must_not_run)(context())

    error = refused.value
    assert not called
    assert error.status == 429
    assert error.openai_body()["error"]["type"] == "insufficient_quota"
    assert error.openai_body()["error"]["code"] == "insufficient_quota"
    assert "daily budget of 1 USD for key 'key_1'" in error.message
    assert "2026-03-16T00:00:00Z" in error.message
    headers = error.headers()
    assert headers["x-should-retry"] == "false"
    assert headers["retry-after"] == str(2 * 3600)
    assert budget.refusals == 1

    clock.set("2026-03-16T00:00:01")
    assert await handler(context()) is ANSWER


async def test_a_spent_total_budget_does_not_invite_a_quick_retry() -> None:
    session = BudgetRule("session", "conv-1", "total", hard_usd=0.0)
    budget, _ = stage(session)
    with pytest.raises(BudgetExhausted) as refused:
        await budget.wrap(answer)(context(session="conv-1"))
    assert int(refused.value.headers()["retry-after"]) >= 3600
    assert "resets" not in refused.value.message


async def test_every_budget_of_the_request_is_charged() -> None:
    rules = [
        BudgetRule("tenant", "acme", "monthly", hard_usd=100.0),
        KEY_DAILY,
        BudgetRule("user", "alice", "daily", hard_usd=5.0),
        BudgetRule("session", "conv-1", "total", hard_usd=2.0),
        BudgetRule("feature", "search", "daily", soft_usd=1.0),
    ]
    budget, memory = stage(*rules)

    await budget.wrap(answer)(context(user="alice", session="conv-1", feature="search"))

    tenant_scoped = {"user", "session", "feature"}
    charges = [Charge(rule, "acme" if rule.scope in tenant_scoped else None) for rule in rules]
    await budget.drain()
    assert [await memory.spent(charge) for charge in charges] == [pytest.approx(0.2)] * 5


async def test_the_user_comes_from_the_header_or_else_the_body() -> None:
    alice = BudgetRule("user", "alice", "daily", hard_usd=0.0)
    budget, _ = stage(alice)
    handler = settled(budget, budget.wrap(answer))

    with pytest.raises(BudgetExhausted):
        await handler(context(body={"user": "alice"}))
    with pytest.raises(BudgetExhausted):
        await handler(context(user="alice", body={"user": "bob"}))
    assert await handler(context(user="bob", body={"user": "alice"})) is ANSWER


async def test_one_tenants_user_cannot_spend_another_tenants_user_budget() -> None:
    alice = BudgetRule("user", "alice", "daily", hard_usd=0.2)
    budget, _ = stage(alice)
    handler = settled(budget, budget.wrap(answer))
    await handler(context(tenant="acme", user="alice"))

    with pytest.raises(BudgetExhausted):
        await handler(context(tenant="acme", user="alice"))
    assert await handler(context(tenant="globex", key="key_9", user="alice")) is ANSWER


async def test_tier_defaults_cover_each_key_unless_the_key_has_its_own_rule() -> None:
    defaults = {"guest": [BudgetTemplate("key", "daily", hard_usd=0.2)]}
    generous = BudgetRule("key", "key_vip", "daily", hard_usd=10.0)
    budget, _ = stage(generous, tier_defaults=defaults)
    handler = settled(budget, budget.wrap(answer))

    await handler(context(tier="guest", key="key_a"))
    with pytest.raises(BudgetExhausted) as refused:
        await handler(context(tier="guest", key="key_a"))
    assert "key 'key_a'" in refused.value.message
    # Another guest key has its own default budget; the VIP key its own rule.
    assert await handler(context(tier="guest", key="key_b")) is ANSWER
    for _ in range(3):
        assert await handler(context(tier="guest", key="key_vip")) is ANSWER
    # Tiers without defaults are not covered.
    assert await handler(context(tier="verified", key="key_a")) is ANSWER


async def test_a_failed_request_settles_its_cost_and_frees_the_rest() -> None:
    budget, memory = stage(KEY_DAILY)

    async def times_out(ctx: RequestContext) -> Reply:
        raise UpstreamTimeout("slow")

    for _ in range(20):
        with pytest.raises(UpstreamTimeout):
            await budget.wrap(times_out)(context())

    await budget.drain()
    assert await memory.spent(Charge(KEY_DAILY)) == 0.0
    assert await budget.wrap(answer)(context()) is ANSWER


async def test_a_cancelled_request_settles_in_the_background() -> None:
    budget, _ = stage(BudgetRule("key", "key_1", "daily", hard_usd=MAX_COST))
    started = asyncio.Event()

    async def hangs(ctx: RequestContext) -> Reply:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    task = asyncio.create_task(budget.wrap(hangs)(context()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await budget.drain()

    # The hold is released: the budget (one request's worth) admits again.
    assert await budget.wrap(answer)(context()) is ANSWER


# --- Streams --------------------------------------------------------------------------


class FakeStream:
    """An upstream stream of ``chunks`` chunks, one completion token each."""

    def __init__(self, chunks: int, *, fail_after: int | None = None) -> None:
        self._chunks = chunks
        self._fail_after = fail_after
        self.usage = Usage(prompt_tokens=5)
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[JSONObject]:
        for index in range(self._chunks):
            if index == self._fail_after:
                raise UpstreamTimeout("stream stalled")
            self.usage.completion_tokens += 1
            yield {"object": "chat.completion.chunk", "index": index}

    async def aclose(self) -> None:
        self.closed = True


def streaming(stream: FakeStream) -> Handler:
    """The rest of the pipeline, answering with ``stream``."""

    async def handler(ctx: RequestContext) -> Reply:
        return stream

    return handler


async def test_a_stream_is_charged_when_it_ends() -> None:
    budget, memory = stage(KEY_DAILY)
    ctx = context()
    reply = await budget.wrap(streaming(FakeStream(7)))(ctx)
    assert not isinstance(reply, ChatResult)

    await budget.drain()
    assert await memory.spent(Charge(KEY_DAILY)) == 0.0
    chunks = [chunk async for chunk in reply]

    assert len(chunks) == 7
    await budget.drain()
    assert await memory.spent(Charge(KEY_DAILY)) == pytest.approx(0.07)
    assert ctx.usage is not None and ctx.usage.completion_tokens == 7


async def test_an_abandoned_stream_is_charged_what_it_generated() -> None:
    budget, memory = stage(KEY_DAILY)
    inner = FakeStream(100)
    reply = await budget.wrap(streaming(inner))(context())
    iterator = aiter(reply)
    for _ in range(3):
        await anext(iterator)

    await reply.aclose()
    await budget.drain()

    assert inner.closed
    await budget.drain()
    assert await memory.spent(Charge(KEY_DAILY)) == pytest.approx(0.03)


async def test_a_stream_broken_mid_way_is_charged_what_came() -> None:
    budget, memory = stage(KEY_DAILY)
    reply = await budget.wrap(streaming(FakeStream(10, fail_after=4)))(context())

    with pytest.raises(UpstreamTimeout):
        async for _ in reply:
            pass

    await budget.drain()
    assert await memory.spent(Charge(KEY_DAILY)) == pytest.approx(0.04)


async def test_a_stream_is_charged_once_however_often_it_is_closed() -> None:
    budget, memory = stage(KEY_DAILY)
    reply = await budget.wrap(streaming(FakeStream(2)))(context())
    async for _ in reply:
        pass
    await reply.aclose()
    await reply.aclose()
    await budget.drain()
    assert await memory.spent(Charge(KEY_DAILY)) == pytest.approx(0.02)


async def test_soft_limits_reached_are_passed_to_the_alerts() -> None:
    class Alerts:
        def __init__(self) -> None:
            self.crossed: list[SoftLimitCrossed] = []

        def notify(self, crossed: SoftLimitCrossed) -> None:
            self.crossed.append(crossed)

    alerts = Alerts()
    soft = BudgetRule("key", "key_1", "daily", soft_usd=0.5)
    budget, _ = stage(soft, alerts=alerts)
    for _ in range(5):
        await settled(budget, budget.wrap(answer))(context())

    assert [(c.charge.rule, c.spent_usd) for c in alerts.crossed] == [(soft, pytest.approx(0.6))]
    assert alerts.crossed[0].window.start == utc("2026-03-15T00:00:00")
