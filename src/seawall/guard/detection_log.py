"""The detection log: what the guard found, on which request, from whom, and what it did.

One ``DetectionEvent`` per request and phase (input checks before the upstream call,
output checks on the answer) that found something: who sent it (tenant, key, end
user, client IP), where it went (route, model), the action taken and a short excerpt,
with every rule's finding (rule id, score, detail). Events are rows of
``guard_detections``; findings are rows of ``guard_detection_rules``, so listing by
rule uses an index and per-rule reports are plain SQL.

Failure mode: writes fail open. A database outage must not fail the request whose
detection it is: ``add`` logs one warning per outage, counts the event in ``lost``
and returns. The action was taken all the same (a blocked request stays blocked), and
the warning log names the request. Reads (``find``, ``get``) raise ``ServiceUnavailable``:
an admin asking for the log gets a 503, not an empty list that looks like "nothing
happened".
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Select, and_, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from seawall.errors import ServiceUnavailable
from seawall.guard.detection import Detection, excerpt
from seawall.stores.tables import guard_detection_rules, guard_detections

logger = logging.getLogger(__name__)

# What a lost or broken database raises through SQLAlchemy's async drivers.
DATABASE_FAILURES: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError, TimeoutError)
# The most events one listing returns.
MAX_LIST = 1000


@dataclass(frozen=True, slots=True)
class DetectionEvent:
    """What the guard found on one request in one phase, and what it did."""

    request_id: str
    tenant_id: str
    detections: tuple[Detection, ...]
    # allow | flag | block | hold | redact
    action: str
    # input (before the upstream call) | output (the answer)
    phase: str = "input"
    key_id: str | None = None
    user: str | None = None
    client_ip: str | None = None
    route: str | None = None
    model: str | None = None
    # A short quote of the offending text (``detection.excerpt`` shortens it).
    excerpt: str = ""
    created_at: float = 0.0
    detection_id: str = ""

    @property
    def rules(self) -> list[str]:
        """The rule ids that fired, in order, each once."""
        return list(dict.fromkeys(found.rule for found in self.detections))


@dataclass(frozen=True, slots=True)
class DetectionFilter:
    """Which events a listing returns (None: any)."""

    tenant_id: str | None = None
    user: str | None = None
    rule: str | None = None
    # Wall-clock seconds: events at or after ``since``, before ``until``.
    since: float | None = None
    until: float | None = None
    limit: int = 100

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIST:
            raise ValueError(f"limit must be from 1 to {MAX_LIST}, got {self.limit!r}")


def new_detection_id() -> str:
    """A fresh detection id."""
    return f"det_{secrets.token_hex(12)}"


class SqlDetectionLog:
    """The detection log in SQL (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine, *, wall_clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._wall_clock = wall_clock
        self._down = False
        # Events that could not be written (for metrics).
        self.lost = 0

    async def add(self, event: DetectionEvent) -> DetectionEvent:
        """Keep ``event`` (stamped now, with a fresh id); a database outage loses it, logged."""
        stamped = replace(
            event,
            detection_id=event.detection_id or new_detection_id(),
            created_at=self._wall_clock(),
            excerpt=excerpt(event.excerpt),
        )
        try:
            async with self._engine.begin() as connection:
                await connection.execute(insert(guard_detections).values(**_event_row(stamped)))
                if stamped.detections:
                    await connection.execute(insert(guard_detection_rules), _rule_rows(stamped))
        except DATABASE_FAILURES as exc:
            self.lost += 1
            if not self._down:
                self._down = True
                logger.warning(
                    "guard detection log: database unavailable (%s: %s); detections are "
                    "logged here only until it is back",
                    type(exc).__name__,
                    exc,
                )
            logger.warning(
                "guard detection not stored: request %s tenant %s rules %s action %s",
                stamped.request_id,
                stamped.tenant_id,
                ",".join(stamped.rules),
                stamped.action,
            )
            return stamped
        if self._down:
            self._down = False
            logger.warning("guard detection log: database is back")
        return stamped

    async def find(self, where: DetectionFilter | None = None) -> list[DetectionEvent]:
        """Events matching ``where``, newest first."""
        return await self._read(_listing(where or DetectionFilter()))

    async def get(self, detection_id: str) -> DetectionEvent | None:
        """One event by id, if it is kept."""
        query = select(guard_detections).where(guard_detections.c.detection_id == detection_id)
        found = await self._read(query)
        return found[0] if found else None

    async def _read(self, query: Select[Any]) -> list[DetectionEvent]:
        """The events ``query`` selects, with their findings; 503 when the database is down."""
        try:
            async with self._engine.connect() as connection:
                rows = (await connection.execute(query)).mappings().all()
                found: dict[str, list[Detection]] = {row["detection_id"]: [] for row in rows}
                if found:
                    r = guard_detection_rules.c
                    rules = (
                        select(r.detection_id, r.rule, r.score, r.detail)
                        .where(r.detection_id.in_(list(found)))
                        .order_by(r.detection_id, r.position)
                    )
                    for detection_id, rule, score, detail in await connection.execute(rules):
                        found[detection_id].append(Detection(rule, score, detail))
        except DATABASE_FAILURES as exc:
            raise ServiceUnavailable(
                f"The guard's detection log is unavailable ({type(exc).__name__})."
            ) from exc
        return [_event(row, found[row["detection_id"]]) for row in rows]


def _listing(where: DetectionFilter) -> Select[Any]:
    c = guard_detections.c
    conditions: list[Any] = []
    if where.tenant_id is not None:
        conditions.append(c.tenant_id == where.tenant_id)
    if where.user is not None:
        conditions.append(c.user == where.user)
    if where.since is not None:
        conditions.append(c.created_at >= where.since)
    if where.until is not None:
        conditions.append(c.created_at < where.until)
    if where.rule is not None:
        r = guard_detection_rules.c
        conditions.append(c.detection_id.in_(select(r.detection_id).where(r.rule == where.rule)))
    query = select(guard_detections)
    if conditions:
        query = query.where(and_(*conditions))
    return query.order_by(c.created_at.desc(), c.detection_id.desc()).limit(where.limit)


# Columns named otherwise in the admin API.
_JSON_NAMES = {"tenant_id": "tenant"}


def _event_row(event: DetectionEvent) -> dict[str, Any]:
    return {
        "detection_id": event.detection_id,
        "request_id": event.request_id,
        "created_at": event.created_at,
        "tenant_id": event.tenant_id,
        "key_id": event.key_id,
        "user": event.user,
        "client_ip": event.client_ip,
        "route": event.route,
        "model": event.model,
        "phase": event.phase,
        "action": event.action,
        "excerpt": event.excerpt,
    }


def _rule_rows(event: DetectionEvent) -> list[dict[str, Any]]:
    return [
        {
            "detection_id": event.detection_id,
            "position": position,
            "rule": found.rule,
            "score": found.score,
            "detail": found.detail,
        }
        for position, found in enumerate(event.detections)
    ]


def _event(row: Any, detections: Sequence[Detection]) -> DetectionEvent:
    return DetectionEvent(
        request_id=row["request_id"],
        tenant_id=row["tenant_id"],
        detections=tuple(detections),
        action=row["action"],
        phase=row["phase"],
        key_id=row["key_id"],
        user=row["user"],
        client_ip=row["client_ip"],
        route=row["route"],
        model=row["model"],
        excerpt=row["excerpt"],
        created_at=row["created_at"],
        detection_id=row["detection_id"],
    )


def detection_json(event: DetectionEvent) -> dict[str, Any]:
    """How a detection event reads in the admin API and the CLI."""
    row = _event_row(event)
    return {
        "id": row.pop("detection_id"),
        **{_JSON_NAMES.get(name, name): value for name, value in row.items()},
        "rules": [
            {"rule": found.rule, "score": found.score, "detail": found.detail}
            for found in event.detections
        ],
    }
