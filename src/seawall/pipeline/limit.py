"""Client rate limits: a request is booked on its key's, user's and IP's limits, or refused.

``limits_for`` (built from per-key values, tier defaults and per-user/per-IP
configuration) says which subjects limit a request. Subjects without limits cost
nothing, and a request without any costs no store call. The request is booked on
all of them at once or refused with 429, Retry-After and OpenAI's x-ratelimit-*
headers; an accepted request carries the same headers for its tightest subject.

Tokens are booked as an estimate (``token_estimate``: prompt plus output
allowance), counted only when some subject limits tokens, and settled against the
real usage once the answer is complete: a non-streaming answer at once, a stream
when it ends (or with what it streamed so far, when the client leaves), a failed
request (``SeawallError``) for nothing. A non-streaming request the client abandons
keeps its estimate: the upstream may well have used it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from seawall.errors import SeawallError
from seawall.pipeline.background import Background
from seawall.pipeline.context import RequestContext
from seawall.pipeline.pipeline import Handler, Reply
from seawall.pipeline.rejections import RejectionLog
from seawall.pipeline.settling_stream import SettlingStream
from seawall.pipeline.token_estimate import request_tokens
from seawall.providers.base import ChatResult, EmbeddingResult, Usage
from seawall.tenancy.client_limits import ClientLimitStore, Entry, limited
from seawall.tenancy.rate_limit_headers import rate_limit_headers, rate_limited_error
from seawall.tokens import TokenCounter

LimitsFor = Callable[[RequestContext], Sequence[Entry]]

# The output allowance of a request that sets no max_tokens (and the cap of one that
# does), when the stage is not told better: a deployment's default max_output_tokens.
DEFAULT_OUTPUT_TOKENS = 4096


@dataclass(frozen=True, slots=True)
class Booking:
    """What ``book`` booked: the subjects, and the estimated tokens (None: not metered)."""

    entries: Sequence[Entry]
    tokens: int | None


class ClientRateLimit:
    """Books each request on its subjects' limits, settles its tokens after the answer."""

    name = "client_rate_limit"

    def __init__(
        self,
        store: ClientLimitStore,
        limits_for: LimitsFor,
        counter: TokenCounter,
        *,
        max_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
        rejections: RejectionLog | None = None,
    ) -> None:
        self._store = store
        self._limits_for = limits_for
        self._counter = counter
        self._max_output_tokens = max_output_tokens
        self._rejections = rejections
        # Refusals by the kind of subject that refused ("key", "user", "ip"), for metrics.
        self.refused: Counter[str] = Counter()
        # Settlements, running off the response path.
        self._settling = Background()

    def wrap(self, call_next: Handler) -> Handler:
        """Refuse a request over its limits; label and settle the ones that go through."""

        async def limit(ctx: RequestContext) -> Reply:
            return await self.around(ctx, await self.book(ctx), call_next)

        return limit

    async def book(self, ctx: RequestContext) -> Booking | None:
        """Book the request on its subjects, or raise the 429; None when nothing limits it."""
        booking = self.booking(ctx)
        return None if booking is None else await booking

    def booking(self, ctx: RequestContext) -> Coroutine[Any, Any, Booking] | None:
        """``book``'s store call, not started; None when nothing limits the request."""
        entries = limited(self._limits_for(ctx))
        if not entries:
            return None
        metered = any(limits.tpm is not None for _, limits in entries)
        return self._book(ctx, entries, self._estimate(ctx) if metered else None)

    async def _book(
        self, ctx: RequestContext, entries: Sequence[Entry], tokens: int | None
    ) -> Booking:
        decision = await self._store.check(entries, tokens or 0)
        if not decision.allowed:
            error = rate_limited_error(decision)
            if decision.refusal is not None:
                self.refused[decision.refusal.subject.partition(":")[0]] += 1
            if self._rejections is not None:
                self._rejections.note(error)
            raise error
        ctx.response_headers.update(rate_limit_headers(decision))
        return Booking(entries, tokens)

    async def around(
        self, ctx: RequestContext, booking: Booking | None, call_next: Handler
    ) -> Reply:
        """Run ``call_next`` and settle the booking's tokens against what it used."""
        if booking is None or booking.tokens is None:
            return await call_next(ctx)
        entries, tokens = booking.entries, booking.tokens
        store = self._store
        try:
            reply = await call_next(ctx)
        except SeawallError:
            await store.settle(entries, tokens, 0)
            raise
        if isinstance(reply, ChatResult | EmbeddingResult):
            # Off the response path: the answer does not wait for the settlement.
            self._settling.run(store.settle(entries, tokens, reply.usage.total_tokens))
            return reply

        async def settle(usage: Usage) -> None:
            await store.settle(entries, tokens, usage.total_tokens)

        return SettlingStream(reply, settle, self._settling)

    def release(self, booking: Booking | None) -> None:
        """Give back the tokens of a booking whose request went no further."""
        if booking is not None and booking.tokens is not None:
            self._settling.run(self._store.settle(booking.entries, booking.tokens, 0))

    async def drain(self) -> None:
        """Wait for settlements still running in the background (at shutdown, in tests)."""
        await self._settling.drain()

    def _estimate(self, ctx: RequestContext) -> int:
        return request_tokens(self._counter, ctx, self._max_output_tokens)
