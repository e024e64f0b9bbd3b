"""Per-user strikes: a user who keeps tripping the guard is blocked for a while.

Each end user is a subject scoped to its tenant (``acme``'s "alice" and ``globex``'s
"alice" never share a count). A strike is one timestamp; strikes older than the
policy's window are forgotten. When a user gathers ``max_strikes`` strikes within the
window they are blocked for the first of ``block_seconds``; each further block lasts
the next duration (15 min, 1 h, 24 h by default; the last one repeats). The strikes
behind a block are used up by it: the next block needs ``max_strikes`` new ones. A
user who stays out of trouble for ``forget_blocks_seconds`` after a block ends starts
the escalation over.

``forgive`` takes strikes back (an approved review: the request was fine). It removes
the newest strikes first: a review cannot say which strike it was about, and the
newest are the likeliest. When a forgiven strike was one behind the last block, that
block is undone: lifted if it is still running, and no longer counted for escalation,
and the strikes it had used up count again.

The arithmetic is ``StrikeRecord``'s, here in Python for ``MemoryStrikes``;
``strikes_redis.RedisStrikes`` runs the same steps in a Lua script, so every
instance sees one count. Times are wall-clock seconds (``time.time``), so
``blocked_until`` means the same on every instance and in the admin API.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from seawall.tenancy.client_limits import user_subject

# How many strikes a subject keeps at most, in multiples of ``max_strikes`` (the
# oldest go first): enough to undo the last block, bounded under a flood.
KEPT_STRIKES_FACTOR = 2


@dataclass(frozen=True, slots=True)
class StrikePolicy:
    """When strikes turn into a block, and for how long."""

    # Strikes within ``window_seconds`` that block the user.
    max_strikes: int = 3
    window_seconds: float = 3600.0
    # How long each block lasts: the first, the second, ...; the last one repeats.
    block_seconds: tuple[float, ...] = (900.0, 3600.0, 86400.0)
    # A user with no block for this long after the last one ended starts over at the first.
    forget_blocks_seconds: float = 7 * 86400.0

    def __post_init__(self) -> None:
        # YAML gives a list; keep the value hashable and immutable.
        object.__setattr__(self, "block_seconds", tuple(float(s) for s in self.block_seconds))
        if not 1 <= self.max_strikes <= 1000:
            raise ValueError(f"max_strikes must be from 1 to 1000, got {self.max_strikes!r}")
        if not self.window_seconds > 0:
            raise ValueError(f"window_seconds must be positive, got {self.window_seconds!r}")
        if not self.block_seconds or any(not s > 0 for s in self.block_seconds):
            raise ValueError("block_seconds must be one or more positive durations")
        if not self.forget_blocks_seconds > 0:
            raise ValueError("forget_blocks_seconds must be positive")

    @property
    def kept_strikes(self) -> int:
        """The most strikes one subject keeps."""
        return KEPT_STRIKES_FACTOR * self.max_strikes

    def block_for(self, level: int) -> float:
        """Seconds the block after ``level`` earlier blocks lasts."""
        return self.block_seconds[min(level, len(self.block_seconds) - 1)]


@dataclass(frozen=True, slots=True)
class StrikeState:
    """Where one user stands, as of ``as_of``."""

    # Strikes in the window that count toward the next block.
    strikes: int
    # Blocks so far (the escalation level); 0 again after a quiet spell.
    blocks: int = 0
    # Wall-clock time the current block ends; None when not blocked.
    blocked_until: float | None = None
    # The wall-clock time this state was read at.
    as_of: float = 0.0
    # Whether this very call started (or extended) a block.
    block_started: bool = False

    @property
    def blocked(self) -> bool:
        """Whether the user is blocked now."""
        return self.blocked_until is not None

    @property
    def retry_after(self) -> float:
        """Seconds until the block ends (0 when not blocked)."""
        return 0.0 if self.blocked_until is None else max(0.0, self.blocked_until - self.as_of)


class StrikeStore(Protocol):
    """Strike counts and blocks, per end user of a tenant."""

    async def add(self, tenant: str, user: str, n: int = 1) -> StrikeState:
        """Count ``n`` strikes against the user now; may start a block."""
        ...

    async def state(self, tenant: str, user: str) -> StrikeState:
        """Where the user stands now (changes nothing)."""
        ...

    async def forgive(self, tenant: str, user: str, n: int = 1) -> StrikeState:
        """Take back the user's ``n`` newest strikes; may lift the block they caused."""
        ...


def strike_subject(tenant: str, user: str) -> str:
    """The subject of a user's strikes: the tenant's user (long names hashed)."""
    return user_subject(tenant, user)


@dataclass(slots=True)
class StrikeRecord:
    """One subject's strikes and blocks: what the stores keep."""

    # Strike times, oldest first, none older than the window.
    times: list[float] = field(default_factory=list)
    # How many of the oldest ``times`` the blocks so far used up.
    consumed: int = 0
    # ``consumed`` before the last block (to undo it).
    previous: int = 0
    # Blocks so far.
    level: int = 0
    # When the last block ends (0: no block to remember).
    until: float = 0.0

    def settle(self, now: float, policy: StrikePolicy) -> None:
        """Forget strikes past the window and blocks past ``forget_blocks_seconds``."""
        horizon = now - policy.window_seconds
        dropped = 0
        while dropped < len(self.times) and self.times[dropped] <= horizon:
            dropped += 1
        if dropped:
            self._drop_oldest(dropped)
        if self.until and now >= self.until + policy.forget_blocks_seconds:
            self.level = 0
            self.until = 0.0

    def add(self, now: float, n: int, policy: StrikePolicy) -> bool:
        """Count ``n`` strikes at ``now``; True when they start a block."""
        self.settle(now, policy)
        self.times.extend([now] * n)
        started = False
        if len(self.times) - self.consumed >= policy.max_strikes:
            self.previous = self.consumed
            self.consumed = len(self.times)
            self.until = max(self.until, now + policy.block_for(self.level))
            self.level += 1
            started = True
        excess = len(self.times) - policy.kept_strikes
        if excess > 0:
            self._drop_oldest(excess)
        return started

    def forgive(self, now: float, n: int, policy: StrikePolicy) -> None:
        """Take back the ``n`` newest strikes; undo the last block if one of its own went."""
        self.settle(now, policy)
        kept = max(0, len(self.times) - n)
        del self.times[kept:]
        if kept < self.consumed:
            self.consumed = min(self.previous, kept)
            self.previous = self.consumed
            self.level = max(0, self.level - 1)
            if self.until > now:
                self.until = now
            if self.level == 0:
                self.until = 0.0

    def state(self, now: float, *, started: bool = False) -> StrikeState:
        """The record as ``StrikeState`` at ``now``."""
        return StrikeState(
            strikes=len(self.times) - self.consumed,
            blocks=self.level,
            blocked_until=self.until if self.until > now else None,
            as_of=now,
            block_started=started,
        )

    def expires_at(self, policy: StrikePolicy) -> float | None:
        """When the record means nothing any more (None: it means nothing now)."""
        ends = [self.times[-1] + policy.window_seconds] if self.times else []
        if self.until:
            ends.append(self.until + policy.forget_blocks_seconds)
        return max(ends) if ends else None

    def _drop_oldest(self, count: int) -> None:
        del self.times[:count]
        self.consumed = max(0, self.consumed - count)
        self.previous = max(0, self.previous - count)


def _checked(n: int) -> int:
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n!r}")
    return n


class MemoryStrikes:
    """``StrikeStore`` kept in this process: exact for one instance."""

    def __init__(
        self,
        policy: StrikePolicy | None = None,
        *,
        wall_clock: Callable[[], float] = time.time,
        sweep_seconds: float = 60.0,
    ) -> None:
        self.policy = policy or StrikePolicy()
        self._wall_clock = wall_clock
        self._records: dict[str, StrikeRecord] = {}
        self._sweep_seconds = sweep_seconds
        self._next_sweep = wall_clock() + sweep_seconds

    def __len__(self) -> int:
        """Subjects with a record (ones that mean nothing go at the next sweep)."""
        return len(self._records)

    async def add(self, tenant: str, user: str, n: int = 1) -> StrikeState:
        """Count ``n`` strikes against the user now; may start a block."""
        now = self._now()
        record = self._records.setdefault(strike_subject(tenant, user), StrikeRecord())
        started = record.add(now, _checked(n), self.policy)
        return record.state(now, started=started)

    async def state(self, tenant: str, user: str) -> StrikeState:
        """Where the user stands now (changes nothing)."""
        now = self._now()
        record = self._records.get(strike_subject(tenant, user))
        if record is None:
            return StrikeState(strikes=0, as_of=now)
        record.settle(now, self.policy)
        return record.state(now)

    async def forgive(self, tenant: str, user: str, n: int = 1) -> StrikeState:
        """Take back the user's ``n`` newest strikes; may lift the block they caused."""
        now = self._now()
        record = self._records.get(strike_subject(tenant, user))
        if record is None:
            return StrikeState(strikes=0, as_of=now)
        record.forgive(now, _checked(n), self.policy)
        return record.state(now)

    def _now(self) -> float:
        now = self._wall_clock()
        if now >= self._next_sweep:
            self._next_sweep = now + self._sweep_seconds
            for subject, record in list(self._records.items()):
                expires = record.expires_at(self.policy)
                if expires is None or expires <= now:
                    del self._records[subject]
        return now
