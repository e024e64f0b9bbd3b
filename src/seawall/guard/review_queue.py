"""The review queue: requests the guard held until a person approves or rejects them.

A held request is kept with its messages (JSON), who sent it and the rules that fired;
it waits as ``pending`` until a reviewer decides. A decision updates the sender's
strikes: approving says the request was fine, so the strike it earned is forgiven
(lifting a block it caused); rejecting confirms the attack, so the strike stays and
one more is added. Requests without an end user have no strikes to update.

Each item belongs to one tenant: a listing for a tenant shows only its items, and a
decision made for a tenant (``tenant=``) finds only its items, so one tenant's
reviewer can never see or decide another's. A decision is made once: of two
reviewers deciding the same item at the same moment, one wins and the other is told
it was already decided, and strikes change once.

Failure mode: fails closed. A request the guard wants held cannot be held without the
queue, so ``add`` raises ``ServiceUnavailable`` while the database is unavailable;
the guard refuses that request (503) rather than let it through unreviewed.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal

from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from seawall.errors import ServiceUnavailable
from seawall.guard.detection import Detection
from seawall.guard.detection_log import DATABASE_FAILURES
from seawall.guard.strikes import StrikeState, StrikeStore
from seawall.stores.tables import guard_reviews

ReviewStatus = Literal["pending", "approved", "rejected"]
# The most items one listing returns.
MAX_LIST = 1000


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """One held request and, once decided, the decision."""

    tenant_id: str
    # The request's messages, as the client sent them (JSON values).
    messages: Sequence[Any]
    detections: tuple[Detection, ...]
    key_id: str | None = None
    # The end user whose strikes a decision updates (None: nobody's).
    user: str | None = None
    request_id: str | None = None
    route: str | None = None
    model: str | None = None
    review_id: str = ""
    created_at: float = 0.0
    status: ReviewStatus = "pending"
    reviewer: str | None = None
    note: str | None = None
    decided_at: float | None = None


@dataclass(frozen=True, slots=True)
class ReviewDecision:
    """A decided item and where its user's strikes stand after the decision."""

    item: ReviewItem
    strikes: StrikeState | None


class ReviewNotFound(LookupError):
    """No item has this id (for this tenant)."""


class ReviewAlreadyDecided(ValueError):
    """The item was approved or rejected before."""

    def __init__(self, item: ReviewItem) -> None:
        super().__init__(f"review {item.review_id} was already {item.status}")
        self.item = item


def new_review_id() -> str:
    """A fresh review id."""
    return f"rev_{secrets.token_hex(12)}"


class SqlReviewQueue:
    """The review queue in SQL (SQLite or PostgreSQL); decisions update ``strikes``."""

    def __init__(
        self,
        engine: AsyncEngine,
        strikes: StrikeStore,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._strikes = strikes
        self._wall_clock = wall_clock

    async def add(self, item: ReviewItem) -> ReviewItem:
        """Hold ``item`` for review (pending, stamped now, with a fresh id)."""
        held = replace(
            item,
            review_id=new_review_id(),
            created_at=self._wall_clock(),
            status="pending",
            reviewer=None,
            note=None,
            decided_at=None,
        )
        try:
            async with self._engine.begin() as connection:
                await connection.execute(insert(guard_reviews).values(**_row(held)))
        except DATABASE_FAILURES as exc:
            raise ServiceUnavailable(
                "This request needs review, and the review queue is unavailable "
                f"({type(exc).__name__}); please try again later."
            ) from exc
        return held

    async def pending(self, tenant: str | None = None, limit: int = 100) -> list[ReviewItem]:
        """Items awaiting a decision, oldest first: the tenant's, or every tenant's."""
        if not 1 <= limit <= MAX_LIST:
            raise ValueError(f"limit must be from 1 to {MAX_LIST}, got {limit!r}")
        c = guard_reviews.c
        condition = c.status == "pending"
        if tenant is not None:
            condition = and_(condition, c.tenant_id == tenant)
        query = (
            select(guard_reviews).where(condition).order_by(c.created_at, c.review_id).limit(limit)
        )
        async with self._reading() as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [_item(row) for row in rows]

    async def get(self, review_id: str, tenant: str | None = None) -> ReviewItem:
        """One item, decided or not; ``ReviewNotFound`` unless it exists (for ``tenant``)."""
        c = guard_reviews.c
        query = select(guard_reviews).where(c.review_id == review_id)
        async with self._reading() as connection:
            row = (await connection.execute(query)).mappings().first()
        if row is None or (tenant is not None and row["tenant_id"] != tenant):
            raise ReviewNotFound(f"no review has the id {review_id!r}")
        return _item(row)

    async def approve(
        self, review_id: str, reviewer: str, note: str | None = None, *, tenant: str | None = None
    ) -> ReviewDecision:
        """The request was fine: decide it, and forgive the strike it earned."""
        return await self._decide(review_id, "approved", reviewer, note, tenant)

    async def reject(
        self, review_id: str, reviewer: str, note: str | None = None, *, tenant: str | None = None
    ) -> ReviewDecision:
        """The request was an attack: decide it, and add a strike to the one it earned."""
        return await self._decide(review_id, "rejected", reviewer, note, tenant)

    async def _decide(
        self,
        review_id: str,
        status: ReviewStatus,
        reviewer: str,
        note: str | None,
        tenant: str | None,
    ) -> ReviewDecision:
        item = await self.get(review_id, tenant)
        if item.status != "pending":
            raise ReviewAlreadyDecided(item)
        decided_at = self._wall_clock()
        c = guard_reviews.c
        # Only a pending item changes, so of two decisions at once exactly one lands.
        statement = (
            update(guard_reviews)
            .where(and_(c.review_id == review_id, c.status == "pending"))
            .values(status=status, reviewer=reviewer, note=note, decided_at=decided_at)
        )
        async with self._reading(write=True) as connection:
            changed = (await connection.execute(statement)).rowcount
        if changed != 1:
            raise ReviewAlreadyDecided(await self.get(review_id))
        decided = replace(item, status=status, reviewer=reviewer, note=note, decided_at=decided_at)
        strikes = None
        if decided.user is not None:
            if status == "approved":
                strikes = await self._strikes.forgive(decided.tenant_id, decided.user)
            else:
                strikes = await self._strikes.add(decided.tenant_id, decided.user)
        return ReviewDecision(decided, strikes)

    @asynccontextmanager
    async def _reading(self, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
        """A connection (a transaction when ``write``); database failures read as 503."""
        try:
            async with self._engine.begin() if write else self._engine.connect() as connection:
                yield connection
        except DATABASE_FAILURES as exc:
            raise ServiceUnavailable(
                f"The guard's review queue is unavailable ({type(exc).__name__})."
            ) from exc


def _row(item: ReviewItem) -> dict[str, Any]:
    return {
        "review_id": item.review_id,
        "created_at": item.created_at,
        "tenant_id": item.tenant_id,
        "key_id": item.key_id,
        "user": item.user,
        "request_id": item.request_id,
        "route": item.route,
        "model": item.model,
        "messages": json.dumps(list(item.messages), ensure_ascii=False),
        "rules": json.dumps(
            [
                {"rule": found.rule, "score": found.score, "detail": found.detail}
                for found in item.detections
            ],
            ensure_ascii=False,
        ),
        "status": item.status,
        "reviewer": item.reviewer,
        "note": item.note,
        "decided_at": item.decided_at,
    }


def _item(row: Any) -> ReviewItem:
    return ReviewItem(
        tenant_id=row["tenant_id"],
        messages=json.loads(row["messages"]),
        detections=tuple(
            Detection(found["rule"], found["score"], found["detail"])
            for found in json.loads(row["rules"])
        ),
        key_id=row["key_id"],
        user=row["user"],
        request_id=row["request_id"],
        route=row["route"],
        model=row["model"],
        review_id=row["review_id"],
        created_at=row["created_at"],
        status=row["status"],
        reviewer=row["reviewer"],
        note=row["note"],
        decided_at=row["decided_at"],
    )


def review_json(item: ReviewItem) -> dict[str, Any]:
    """How a review item reads in the admin API and the CLI."""
    return {
        "id": item.review_id,
        "created_at": item.created_at,
        "tenant": item.tenant_id,
        "key_id": item.key_id,
        "user": item.user,
        "request_id": item.request_id,
        "route": item.route,
        "model": item.model,
        "messages": list(item.messages),
        "rules": [
            {"rule": found.rule, "score": found.score, "detail": found.detail}
            for found in item.detections
        ],
        "status": item.status,
        "reviewer": item.reviewer,
        "note": item.note,
        "decided_at": item.decided_at,
    }
