"""The quotas stage: client limits and budgets checked at once, each settled as its own stage.

The rest of the pipeline is a fake ``call_next``; the stores are the real in-memory ones
(client limits on a fake monotonic clock, budgets on a fake wall clock). What the tests
look at is what a client or an operator sees: answers, errors and their headers, spend,
and the capacity left on a limit or a budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from seawall.errors import BudgetExhausted, RateLimited, SeawallError, UpstreamTimeout
from seawall.pipeline.budget import Budget
from seawall.pipeline.context import RequestContext
from seawall.pipeline.limit import ClientRateLimit
from seawall.pipeline.pipeline import Handler, Reply
from seawall.pipeline.quotas import Quotas
from seawall.pipeline.token_estimate import output_allowance, prompt_tokens
from seawall.providers.base import ChatResult, EmbeddingResult, Usage
from seawall.tenancy.budgets import (
    BudgetRule,
    BudgetStore,
    Charge,
    MemoryBudgetStore,
    OverBudget,
    Reservation,
)
from seawall.tenancy.client_limits import (
    ClientLimits,
    ClientLimitStore,
    Decision,
    Entry,
    MemoryClientLimits,
    key_subject,
)
from seawall.tokens import TokenCounter
from tests.pipeline.test_budget import (
    ANSWER,
    MAX_COST,
    FakeStream,
    Rules,
    UntouchableStore,
    actual_cost,
    answer,
    streaming,
)
from tests.pipeline.test_budget import context as budget_context
from tests.resilience.fake_clock import FakeClock
from tests.tenancy.test_client_limit_stage import BODY, limits
from tests.tenancy.wall_clock import FakeWallClock

KEY = key_subject("key_1")
# What the limits book before the answer: the prompt plus BODY's max_tokens.
ESTIMATE = prompt_tokens(TokenCounter(), BODY) + output_allowance(BODY, 4096, "chat")
# ANSWER's usage: what its tokens settle to, and what it costs (a cent per completion token).
ANSWER_TOKENS = ANSWER.usage.total_tokens
ANSWER_COST = 0.20
TPM = 10_000


def context() -> RequestContext:
    """A chat request from key_1 of tenant acme."""
    return budget_context(body=dict(BODY))


def key_daily(hard_usd: float) -> BudgetRule:
    """A daily hard budget on key_1."""
    return BudgetRule("key", "key_1", "daily", hard_usd=hard_usd)


class UntouchableLimits:
    """A client-limit store that fails the test if the stage uses it."""

    async def check(self, entries: Sequence[Entry], tokens: int) -> Decision:
        raise AssertionError("the limit store was asked to book")

    async def peek(self, entries: Sequence[Entry], tokens: int) -> Decision:
        raise AssertionError("the limit store was asked to peek")

    async def settle(self, entries: Sequence[Entry], estimated: int, used: int) -> None:
        raise AssertionError("the limit store was asked to settle")


class Quota:
    """The stage over in-memory stores (or the ones given), with what the tests look at."""

    def __init__(
        self,
        *rules: BudgetRule,
        rpm: int | None = 10,
        tpm: int | None = TPM,
        limit_store: ClientLimitStore | None = None,
        budget_store: BudgetStore | None = None,
    ) -> None:
        # Not `or`: an empty memory store is falsy (its len is its number of subjects).
        self.limit_store = MemoryClientLimits(FakeClock()) if limit_store is None else limit_store
        self.budget_store = (
            MemoryBudgetStore(FakeWallClock()) if budget_store is None else budget_store
        )
        self.entries: list[Entry] = [(KEY, ClientLimits(rpm=rpm, tpm=tpm))]
        self.limits = ClientRateLimit(self.limit_store, limits(self.entries), TokenCounter())
        self.budget = Budget(Rules(*rules), self.budget_store, lambda ctx: MAX_COST, actual_cost)
        self.stage = Quotas(self.limits, self.budget)

    def handler(self, call_next: Handler) -> Handler:
        """The stage in front of ``call_next``."""
        return self.stage.wrap(call_next)

    async def drain(self) -> None:
        """Wait for both stages' settlements, which run off the response path."""
        await self.limits.drain()
        await self.budget.drain()

    async def standing(self) -> Decision:
        """Where key_1 stands on its limits now (books nothing)."""
        return await self.limit_store.peek(self.entries, 0)

    async def tokens_left(self) -> int:
        """Tokens key_1 may still book this minute."""
        window = (await self.standing()).tokens
        assert window is not None
        return window.remaining

    async def requests_left(self) -> int:
        """Requests key_1 may still make this minute."""
        window = (await self.standing()).requests
        assert window is not None
        return window.remaining

    async def spent(self, rule: BudgetRule) -> float:
        """Settled spend on ``rule``."""
        return await self.budget_store.spent(Charge(rule))

    async def admits(self, rule: BudgetRule) -> bool:
        """Whether ``rule``'s budget, as settled and held now, admits one more request."""
        try:
            probe = await self.budget_store.reserve([Charge(rule)], 0.0)
        except OverBudget:
            return False
        await self.budget_store.settle(probe, 0.0)
        return True


def counting(calls: list[RequestContext], reply: Reply = ANSWER) -> Handler:
    """The rest of the pipeline: notes each call and answers ``reply``."""

    async def handler(ctx: RequestContext) -> Reply:
        calls.append(ctx)
        return reply

    return handler


def upstream_fails(usage: Usage | None) -> Handler:
    """The rest of the pipeline: fails upstream, having noted ``usage`` (if any) first."""

    async def handler(ctx: RequestContext) -> Reply:
        ctx.usage = usage
        raise UpstreamTimeout("the upstream took too long")

    return handler


# --- Answered --------------------------------------------------------------------------


async def test_an_answer_carries_the_limit_headers_and_settles_both() -> None:
    # Room for the answer's 0.20 but not for a further 0.10 hold: a hold left behind
    # after the answer would refuse the next request.
    rule = key_daily(0.25)
    quota = Quota(rule)
    ctx = context()

    assert await quota.handler(answer)(ctx) is ANSWER

    assert ctx.response_headers["x-ratelimit-limit-requests"] == "10"
    assert ctx.response_headers["x-ratelimit-remaining-requests"] == "9"
    assert ctx.response_headers["x-ratelimit-limit-tokens"] == str(TPM)
    assert ctx.response_headers["x-ratelimit-remaining-tokens"] == str(TPM - ESTIMATE)
    await quota.drain()
    assert await quota.spent(rule) == pytest.approx(ANSWER_COST)
    assert await quota.admits(rule)
    assert await quota.tokens_left() == TPM - ANSWER_TOKENS
    assert await quota.requests_left() == 9


async def test_the_next_answer_tells_the_settled_token_capacity() -> None:
    quota = Quota(key_daily(10.0))
    handler = quota.handler(answer)
    await handler(context())
    await quota.drain()

    ctx = context()
    await handler(ctx)

    # The first request counts what it used, not what it was booked for.
    assert ctx.response_headers["x-ratelimit-remaining-tokens"] == str(
        TPM - ANSWER_TOKENS - ESTIMATE
    )
    assert ctx.response_headers["x-ratelimit-remaining-requests"] == "8"


async def test_both_checks_wait_together_not_one_after_the_other() -> None:
    limit_asked, budget_asked = asyncio.Event(), asyncio.Event()

    class MeetingLimits(MemoryClientLimits):
        async def check(self, entries: Sequence[Entry], tokens: int) -> Decision:
            limit_asked.set()
            await budget_asked.wait()
            return await super().check(entries, tokens)

    class MeetingBudgets(MemoryBudgetStore):
        async def reserve(self, charges: Sequence[Charge], amount_usd: float) -> Reservation:
            budget_asked.set()
            await limit_asked.wait()
            return await super().reserve(charges, amount_usd)

    rule = key_daily(1.0)
    quota = Quota(
        rule,
        limit_store=MeetingLimits(FakeClock()),
        budget_store=MeetingBudgets(FakeWallClock()),
    )

    # Asked one after the other, each store would wait for the other forever.
    async with asyncio.timeout(5):
        assert await quota.handler(answer)(context()) is ANSWER
    await quota.drain()
    assert await quota.spent(rule) == pytest.approx(ANSWER_COST)
    assert await quota.tokens_left() == TPM - ANSWER_TOKENS


# --- Refused ---------------------------------------------------------------------------


async def test_a_rate_limited_request_gives_its_budget_hold_back() -> None:
    # 0.20 spent by the first answer; a 0.10 hold left behind would fill the 0.30.
    rule = key_daily(0.30)
    quota = Quota(rule, rpm=1)
    calls: list[RequestContext] = []
    handler = quota.handler(counting(calls))
    await handler(context())

    with pytest.raises(SeawallError) as refused:
        await handler(context())

    error = refused.value
    assert not isinstance(error, BudgetExhausted)
    assert isinstance(error, RateLimited)
    assert error.status == 429
    assert error.openai_body()["error"]["type"] == "rate_limit_error"
    assert error.openai_body()["error"]["code"] == "rate_limit_exceeded"
    headers = error.headers()
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert float(headers["retry-after"]) > 0
    assert "x-should-retry" not in headers
    assert len(calls) == 1
    await quota.drain()
    assert await quota.spent(rule) == pytest.approx(ANSWER_COST)
    assert await quota.admits(rule)


async def test_a_request_over_budget_gives_its_booked_tokens_back() -> None:
    rule = key_daily(ANSWER_COST)
    quota = Quota(rule)
    calls: list[RequestContext] = []
    handler = quota.handler(counting(calls))
    await handler(context())  # spends the whole budget
    await quota.drain()

    with pytest.raises(BudgetExhausted) as refused:
        await handler(context())

    error = refused.value
    assert error.status == 429
    assert error.openai_body()["error"]["type"] == "insufficient_quota"
    assert error.headers()["x-should-retry"] == "false"
    assert "daily budget of 0.2 USD for key 'key_1'" in error.message
    assert len(calls) == 1
    await quota.limits.drain()
    # The refused request's estimate is back; the request itself still counts.
    assert await quota.tokens_left() == TPM - ANSWER_TOKENS
    assert await quota.requests_left() == 8
    await quota.budget.drain()
    assert await quota.spent(rule) == pytest.approx(ANSWER_COST)


async def test_refused_by_both_the_client_hears_of_its_rate_limit() -> None:
    rule = key_daily(ANSWER_COST)
    quota = Quota(rule, rpm=1)
    handler = quota.handler(answer)
    await handler(context())  # the only request of the minute, and the whole budget
    await quota.drain()

    with pytest.raises(SeawallError) as refused:
        await handler(context())

    error = refused.value
    assert not isinstance(error, BudgetExhausted)
    assert error.openai_body()["error"]["type"] == "rate_limit_error"
    assert "x-should-retry" not in error.headers()
    assert "Rate limit reached for requests per min (RPM)" in error.message
    await quota.drain()
    assert await quota.spent(rule) == pytest.approx(ANSWER_COST)
    assert await quota.tokens_left() == TPM - ANSWER_TOKENS


# --- One of the two --------------------------------------------------------------------


async def test_a_request_no_budget_covers_is_only_limited() -> None:
    other_key = BudgetRule("key", "key_2", "daily", hard_usd=0.0)
    quota = Quota(other_key, budget_store=UntouchableStore())
    ctx = context()

    assert await quota.handler(answer)(ctx) is ANSWER

    assert ctx.response_headers["x-ratelimit-remaining-requests"] == "9"
    await quota.drain()
    assert await quota.tokens_left() == TPM - ANSWER_TOKENS


async def test_a_request_no_budget_covers_is_still_rate_limited() -> None:
    quota = Quota(rpm=1, budget_store=UntouchableStore())
    handler = quota.handler(answer)
    await handler(context())

    with pytest.raises(RateLimited) as refused:
        await handler(context())
    assert refused.value.openai_body()["error"]["type"] == "rate_limit_error"
    await quota.drain()


async def test_a_key_without_limits_is_only_budgeted() -> None:
    rule = key_daily(0.25)
    quota = Quota(rule, rpm=None, tpm=None, limit_store=UntouchableLimits())
    ctx = context()

    assert await quota.handler(answer)(ctx) is ANSWER

    assert not any(name.startswith("x-ratelimit") for name in ctx.response_headers)
    await quota.drain()
    assert await quota.spent(rule) == pytest.approx(ANSWER_COST)
    assert await quota.admits(rule)


async def test_a_key_without_limits_is_still_refused_its_spent_budget() -> None:
    rule = key_daily(ANSWER_COST)
    quota = Quota(rule, rpm=None, tpm=None, limit_store=UntouchableLimits())
    handler = quota.handler(answer)
    await handler(context())
    await quota.drain()

    with pytest.raises(BudgetExhausted):
        await handler(context())
    await quota.drain()
    assert await quota.spent(rule) == pytest.approx(ANSWER_COST)


# --- Streams and failures --------------------------------------------------------------


async def test_a_stream_settles_both_when_it_ends() -> None:
    # 0.07 streamed; a 0.10 hold left behind would fill the 0.15.
    rule = key_daily(0.15)
    quota = Quota(rule)
    reply = await quota.handler(streaming(FakeStream(7)))(context())
    assert not isinstance(reply, ChatResult | EmbeddingResult)

    await quota.drain()
    # Nothing is settled before the stream ends: the booking and the hold stand.
    assert await quota.tokens_left() == TPM - ESTIMATE
    assert await quota.spent(rule) == 0.0
    assert not await quota.admits(key_daily(MAX_COST))

    chunks = [chunk async for chunk in reply]

    assert len(chunks) == 7
    await quota.drain()
    assert await quota.spent(rule) == pytest.approx(0.07)
    assert await quota.admits(rule)
    assert await quota.tokens_left() == TPM - (5 + 7)  # FakeStream's prompt, then its chunks


async def test_an_abandoned_stream_settles_both_with_what_it_streamed() -> None:
    rule = key_daily(0.15)
    quota = Quota(rule)
    upstream = FakeStream(100)
    reply = await quota.handler(streaming(upstream))(context())
    assert not isinstance(reply, ChatResult | EmbeddingResult)
    iterator = aiter(reply)
    for _ in range(3):
        await anext(iterator)

    await reply.aclose()

    assert upstream.closed
    await quota.drain()
    assert await quota.spent(rule) == pytest.approx(0.03)
    assert await quota.admits(rule)
    assert await quota.tokens_left() == TPM - (5 + 3)


@pytest.mark.parametrize(
    ("usage", "cost"),
    [(None, 0.0), (Usage(prompt_tokens=5, completion_tokens=3), 0.03)],
    ids=["no-usage", "partial-usage"],
)
async def test_an_upstream_failure_charges_its_cost_and_refunds_the_tokens(
    usage: Usage | None, cost: float
) -> None:
    rule = key_daily(MAX_COST)  # one hold fills it: a hold left behind refuses the next
    quota = Quota(rule)

    with pytest.raises(UpstreamTimeout) as failed:
        await quota.handler(upstream_fails(usage))(context())

    assert failed.value.status == 504
    await quota.drain()
    assert await quota.spent(rule) == pytest.approx(cost)
    assert await quota.admits(rule)
    assert await quota.tokens_left() == TPM
    assert await quota.requests_left() == 9


async def test_a_client_leaving_during_the_checks_keeps_no_budget_held() -> None:
    """The limit store answers slowly; the client leaves once the budget hold is taken.

    The budget stage alone settles a cancelled request's hold; run with the limits,
    the hold must not stay until the reservation lapses (15 minutes) either.
    """
    limit_asked, held = asyncio.Event(), asyncio.Event()

    class SlowLimits(MemoryClientLimits):
        async def check(self, entries: Sequence[Entry], tokens: int) -> Decision:
            limit_asked.set()
            await asyncio.Event().wait()  # never answers
            raise AssertionError("unreachable")

    class SignallingBudgets(MemoryBudgetStore):
        async def reserve(self, charges: Sequence[Charge], amount_usd: float) -> Reservation:
            reservation = await super().reserve(charges, amount_usd)
            held.set()
            return reservation

    rule = key_daily(MAX_COST)  # one hold fills it
    quota = Quota(
        rule, limit_store=SlowLimits(FakeClock()), budget_store=SignallingBudgets(FakeWallClock())
    )
    calls: list[RequestContext] = []
    handler = quota.handler(counting(calls))

    async def client() -> Reply:
        return await handler(context())

    request = asyncio.create_task(client())
    async with asyncio.timeout(5):
        await limit_asked.wait()
        await held.wait()

    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request

    assert not calls
    await quota.drain()
    assert await quota.spent(rule) == 0.0
    assert await quota.admits(rule), "the budget is still held by a request that left"
