"""End users' feedback, kept beside the request it is about.

One row per request (``feedback``); feedback sent again for the same request
replaces it, so a user who changes their mind is counted once. The request record
is what ties feedback to a model, deployment and tenant: ``owner`` finds it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from seawall.stores.tables import feedback, requests


@dataclass(frozen=True, slots=True)
class Rated:
    """The request feedback is about: its tenant, and the model and deployment that answered."""

    tenant_id: str
    model: str | None
    deployment: str | None


@dataclass(frozen=True, slots=True)
class Feedback:
    """One request's feedback: a score from 0 (bad) to 1 (good)."""

    request_id: str
    tenant_id: str
    key_id: str
    score: float
    thumbs: str | None = None
    comment: str | None = None
    created_at: float = 0.0


class SqlFeedbackStore:
    """Feedback in SQL (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine, *, wall_clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._wall_clock = wall_clock

    async def owner(self, request_id: str) -> Rated | None:
        """Whose the recorded request ``request_id`` is and what answered it; None when
        none is recorded (or it was recorded without a tenant)."""
        r = requests.c
        query = select(r.tenant_id, r.public_model, r.deployment).where(r.request_id == request_id)
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        if row is None or row[0] is None:
            return None
        return Rated(str(row[0]), row[1], row[2])

    async def put(self, given: Feedback) -> Feedback:
        """Keep ``given`` (stamped now), replacing earlier feedback on the same request."""
        stamped = dataclasses.replace(given, created_at=self._wall_clock())
        # The table's columns are the dataclass's fields, by name.
        values = dataclasses.asdict(stamped)
        insert = (postgresql if self._engine.dialect.name == "postgresql" else sqlite).insert
        statement = insert(feedback).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[feedback.c.request_id],
            set_={name: statement.excluded[name] for name in values if name != "request_id"},
        )
        async with self._engine.begin() as connection:
            await connection.execute(statement)
        return stamped

    async def get(self, request_id: str) -> Feedback | None:
        """The feedback on ``request_id``, if any."""
        query = select(feedback).where(feedback.c.request_id == request_id)
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).mappings().first()
        return None if row is None else Feedback(**row)
