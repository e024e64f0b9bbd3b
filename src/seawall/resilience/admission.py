"""Admission control: a bounded queue, in priority order, in front of this instance's work.

At most ``max_concurrent`` requests work at once; up to ``max_queue`` more wait, high
priority first, then first come first served. Anything beyond that is shed at once with
``Overloaded`` and a Retry-After, because a fast "come back in 2 s" is kinder to
clients (and to us) than an unbounded queue that times everybody out.

The queue is per instance on purpose: what waits in it is open client connections, and
those live in one process. Fairness across instances for provider capacity comes from
the shared rate budgets, not from here.

Deadlines: a request that would only start after its deadline is refused now rather
than after a pointless wait, using an EWMA of how long slots are held. Admission cannot
know how long this particular request will take, so it judges only the wait to start.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from enum import IntEnum

from seawall.errors import InvalidRequest, Overloaded
from seawall.resilience.clock import Clock

# Weight of the newest hold time in the EWMA: recent enough to follow a slowing
# upstream within a few dozen requests, smooth enough to ignore one outlier.
_HOLD_EWMA_WEIGHT = 0.2
# Clients are never told to come back sooner than this.
_MIN_RETRY_AFTER = 1.0

PRIORITY_HEADER = "x-seawall-priority"


class Priority(IntEnum):
    """How urgently a request wants a slot; lower values are served first."""

    HIGH = 0
    NORMAL = 1
    LOW = 2

    @classmethod
    def parse(cls, value: str | None) -> Priority:
        """The priority an ``x-seawall-priority`` header asks for (absent means normal)."""
        if value is None:
            return cls.NORMAL
        try:
            return cls[value.strip().upper()]
        except KeyError:
            allowed = ", ".join(p.name.lower() for p in cls)
            raise InvalidRequest(
                f"{PRIORITY_HEADER} must be one of {allowed}; got {value!r}",
                param=PRIORITY_HEADER,
            ) from None


@dataclass(frozen=True, slots=True)
class AdmissionSettings:
    """Limits of one instance's admission queue."""

    # Requests working at once in this instance. LLM calls are long: at 200 req/s and
    # 10 s each, 2,000 are in flight; each costs memory, not CPU, while it waits.
    max_concurrent: int = 4096
    max_queue: int = 4096  # requests waiting for a slot; never more

    def __post_init__(self) -> None:
        if self.max_concurrent < 1:
            raise ValueError(f"max_concurrent must be >= 1, got {self.max_concurrent!r}")
        if self.max_queue < 0:
            raise ValueError(f"max_queue must be >= 0, got {self.max_queue!r}")


@dataclass(eq=False, slots=True)
class _Waiter:
    """A queued request; identity-hashed so it can key its priority class's queue."""

    priority: Priority
    future: asyncio.Future[None]


class Admission:
    """Hands out this instance's working slots, queueing and shedding when they run out."""

    def __init__(self, settings: AdmissionSettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._working = 0
        # One FIFO per priority class: O(1) append, pop from either end, and removal of a
        # cancelled waiter from the middle.
        self._queues: dict[Priority, OrderedDict[_Waiter, None]] = {
            p: OrderedDict() for p in Priority
        }
        self._hold_ewma: float | None = None
        self._admitted = 0
        self._shed_full = 0
        self._shed_deadline = 0
        self._evicted = 0

    @property
    def clock(self) -> Clock:
        """The clock slots are timed by."""
        return self._clock

    @property
    def admitted(self) -> int:
        """Requests given a slot since start."""
        return self._admitted

    @property
    def queued_now(self) -> int:
        """Requests waiting for a slot now."""
        return sum(len(q) for q in self._queues.values())

    @property
    def working_now(self) -> int:
        """Slots held now."""
        return self._working

    @property
    def shed_full(self) -> int:
        """Requests refused because the queue was full of equal or higher priority."""
        return self._shed_full

    @property
    def shed_deadline(self) -> int:
        """Requests refused because they could not start before their deadline."""
        return self._shed_deadline

    @property
    def evicted(self) -> int:
        """Waiters pushed out of a full queue by a higher-priority newcomer."""
        return self._evicted

    def slot(self, priority: Priority, deadline: float | None) -> AbstractAsyncContextManager[None]:
        """Hold a working slot for the block; ``deadline`` is a ``clock.now()`` value or None."""
        return self._slot(priority, deadline)

    async def acquire(self, priority: Priority, deadline: float | None) -> float:
        """Wait for a working slot, or raise ``Overloaded``; returns when it was taken."""
        await self._acquire(priority, deadline)
        return self._clock.now()

    def release(self, taken_at: float) -> None:
        """Give back the slot ``acquire`` took at ``taken_at``."""
        self._record_hold(self._clock.now() - taken_at)
        self._release()

    @asynccontextmanager
    async def _slot(self, priority: Priority, deadline: float | None) -> AsyncIterator[None]:
        taken_at = await self.acquire(priority, deadline)
        try:
            yield
        finally:
            self.release(taken_at)

    async def _acquire(self, priority: Priority, deadline: float | None) -> None:
        """Return holding a slot, or raise ``Overloaded``."""
        if self._working < self._settings.max_concurrent:
            # Released slots go straight to waiters, so a free slot means nobody waits.
            self._working += 1
            self._admitted += 1
            return
        ahead = sum(len(self._queues[p]) for p in Priority if p <= priority)
        wait = self._estimated_wait(ahead)
        if deadline is not None:
            left = deadline - self._clock.now()
            if left <= 0 or (wait is not None and wait >= left):
                self._shed_deadline += 1
                raise Overloaded(
                    "Seawall is too busy to start this request before its deadline",
                    retry_after=self._retry_after(ahead),
                )
        if self.queued_now >= self._settings.max_queue:
            self._make_room(priority)
        waiter = _Waiter(priority, asyncio.get_running_loop().create_future())
        self._queues[priority][waiter] = None
        try:
            if deadline is None:
                await waiter.future
            else:
                await self._wait_until(waiter, deadline)
        except BaseException:
            self._abandon(waiter)
            raise

    def _make_room(self, priority: Priority) -> None:
        """Evict the last waiter of a lower class than ``priority``, or shed the newcomer."""
        queued = self.queued_now
        for lowest in reversed(Priority):
            if lowest <= priority:
                break
            if self._queues[lowest]:
                victim, _ = self._queues[lowest].popitem(last=True)
                if victim.future.done():
                    return  # cancelled, not yet cleaned up: its place was free already
                self._evicted += 1
                victim.future.set_exception(
                    Overloaded(
                        "Seawall is overloaded: a more urgent request took this queue place",
                        retry_after=self._retry_after(queued),
                    )
                )
                return
        self._shed_full += 1
        raise Overloaded(
            "Seawall is overloaded: its request queue is full",
            retry_after=self._retry_after(queued),
        )

    async def _wait_until(self, waiter: _Waiter, deadline: float) -> None:
        """Wait for ``waiter``'s slot, racing the injected clock to the deadline."""
        timer = asyncio.ensure_future(self._clock.sleep(deadline - self._clock.now()))
        try:
            await asyncio.wait((waiter.future, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        if waiter.future.done():
            # A slot (or an eviction) arriving with the deadline still counts.
            waiter.future.result()
            return
        self._shed_deadline += 1
        raise Overloaded(
            "Seawall could not start this request before its deadline",
            retry_after=self._retry_after(self._ahead_of(waiter)),
        )

    def _abandon(self, waiter: _Waiter) -> None:
        """Clean up after a waiter that will not run: cancelled, timed out or evicted."""
        self._queues[waiter.priority].pop(waiter, None)
        future = waiter.future
        if not future.done():
            future.cancel()
        elif not future.cancelled() and future.exception() is None:
            # The slot was handed over just as the client left: pass it on, never leak it.
            self._release()

    def _release(self) -> None:
        """Give a freed slot to the best waiter, or return it to the pool."""
        for queue in self._queues.values():  # dict order is priority order
            while queue:
                waiter, _ = queue.popitem(last=False)
                if not waiter.future.done():
                    # Handing the slot over directly wakes one waiter, not a herd.
                    waiter.future.set_result(None)
                    self._admitted += 1
                    return
        self._working -= 1

    def _record_hold(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        if self._hold_ewma is None:
            self._hold_ewma = seconds
        else:
            self._hold_ewma += _HOLD_EWMA_WEIGHT * (seconds - self._hold_ewma)

    def _estimated_wait(self, ahead: int) -> float | None:
        """Seconds until a waiter with ``ahead`` others before it gets a slot; None if unknown."""
        if self._hold_ewma is None:
            return None
        # Slots free at about max_concurrent per hold time; this waiter needs ahead + 1.
        return self._hold_ewma * (ahead + 1) / self._settings.max_concurrent

    def _retry_after(self, ahead: int) -> float:
        return max(_MIN_RETRY_AFTER, self._estimated_wait(ahead) or 0.0)

    def _ahead_of(self, waiter: _Waiter) -> int:
        ahead = sum(len(self._queues[p]) for p in Priority if p < waiter.priority)
        for other in self._queues[waiter.priority]:
            if other is waiter:
                break
            ahead += 1
        return ahead
