"""Client rate limits and budgets, checked together: one wait for both.

Each is a stage of its own (``limit.ClientRateLimit``, ``budget.Budget``), but run
one after the other a request would wait for two Redis round trips before its
upstream call. This stage books the limits and holds the budget at once (a shared
store sends both in one write) and settles each as its own stage would.

Refused by either, the request goes no further and gives back what the other booked
(a limit's estimated tokens, a budget's hold); the request itself stays counted by
the limits, as it is when a later stage refuses it. Refused by both, the client hears
of its rate limit first: that 429 is worth retrying, and says when.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from seawall.pipeline.budget import Budget
from seawall.pipeline.context import RequestContext
from seawall.pipeline.limit import Booking, ClientRateLimit
from seawall.pipeline.pipeline import Handler, Reply
from seawall.tenancy.budgets import Reservation

T = TypeVar("T")


class Quotas:
    """Books client limits and holds budgets concurrently, then settles both."""

    name = "quotas"

    def __init__(self, limits: ClientRateLimit, budget: Budget) -> None:
        self._limits = limits
        self._budget = budget

    def wrap(self, call_next: Handler) -> Handler:
        """Check both before ``call_next``; settle both after it."""
        limits, budget = self._limits, self._budget

        async def quotas(ctx: RequestContext) -> Reply:
            booking_call, hold_call = limits.booking(ctx), budget.holding(ctx)
            if booking_call is None or hold_call is None:
                # At most one store call: nothing to overlap, nothing to give back.
                booking = None if booking_call is None else await booking_call
                reservation = None if hold_call is None else await hold_call
            else:
                booking, reservation = await _both(ctx, limits, budget, booking_call, hold_call)

            if reservation is None:
                return await limits.around(ctx, booking, call_next)
            if booking is None or booking.tokens is None:
                return await budget.around(ctx, reservation, call_next)

            async def after_limits(ctx: RequestContext) -> Reply:
                return await budget.around(ctx, reservation, call_next)

            return await limits.around(ctx, booking, after_limits)

        return quotas


async def _both(
    ctx: RequestContext,
    limits: ClientRateLimit,
    budget: Budget,
    booking_call: Coroutine[Any, Any, Booking],
    hold_call: Coroutine[Any, Any, Reservation],
) -> tuple[Booking, Reservation]:
    """Book and hold at once; on a refusal, give back what the other got and raise."""
    loop = asyncio.get_running_loop()
    booking, hold = loop.create_task(booking_call), loop.create_task(hold_call)
    try:
        # Unlike gather, wait leaves both calls running if this request is cancelled.
        await asyncio.wait((booking, hold))
    except asyncio.CancelledError:
        # The client left: whatever either call books once it returns is given back.
        booking.add_done_callback(lambda done: limits.release(_result(done)))
        hold.add_done_callback(lambda done: budget.release(ctx, _result(done)))
        raise
    if (refused := booking.exception()) is not None:
        budget.release(ctx, _result(hold))
        raise refused
    if (refused := hold.exception()) is not None:
        limits.release(booking.result())
        raise refused
    return booking.result(), hold.result()


def _result(task: asyncio.Task[T]) -> T | None:
    """A finished task's result; None when it failed or was cancelled."""
    if task.cancelled() or task.exception() is not None:
        return None
    return task.result()
