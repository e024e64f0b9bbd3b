"""The guard's stores of a running gateway, built once at start-up.

Strikes are shared through Redis when one is configured (failing open to this
instance's memory), in process memory otherwise; the detection log and the review
queue live in the SQL database (SQLite or PostgreSQL) with the request records.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from seawall.guard.detection_log import SqlDetectionLog
from seawall.guard.review_queue import SqlReviewQueue
from seawall.guard.strikes import StrikePolicy, StrikeStore
from seawall.guard.strikes_redis import strike_store
from seawall.stores.redis_multiplex import MultiplexedRedis


@dataclass(slots=True)
class GuardStores:
    """Per-user strikes, the detection log and the review queue."""

    strikes: StrikeStore
    detections: SqlDetectionLog
    reviews: SqlReviewQueue


def build_guard_stores(
    policy: StrikePolicy,
    engine: AsyncEngine,
    redis: MultiplexedRedis | None,
    *,
    wall_clock: Callable[[], float] = time.time,
) -> GuardStores:
    """The guard's stores; ``redis`` shares strikes between instances."""
    strikes = strike_store(policy, redis, wall_clock=wall_clock)
    return GuardStores(
        strikes=strikes,
        detections=SqlDetectionLog(engine, wall_clock=wall_clock),
        reviews=SqlReviewQueue(engine, strikes, wall_clock=wall_clock),
    )
