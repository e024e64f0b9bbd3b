"""What a usage report covers: a time window, a tenant, a grouping and a row limit.

The admin API and ``seawall usage`` receive the same parameters as text (query string,
command-line options); ``parse_filters`` turns them into one validated value, so both
refuse the same mistakes with the same messages.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from seawall.errors import InvalidRequest

# The groupings ``spend`` accepts, and the request column each one reads.
DIMENSIONS = {"tenant": "tenant_id", "user": "user", "feature": "feature", "key": "key_id"}
# The parameter names, as the query string and the command line spell them.
PARAMETERS = frozenset({"since", "until", "tenant", "by", "limit"})
# A ceiling on any one answer, so a typo in a limit cannot pull a whole ledger.
MAX_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class ReportFilters:
    """The rows a report reads: ``since <= created_at < until`` (unix seconds, UTC)."""

    since: float | None = None
    until: float | None = None
    tenant_id: str | None = None
    by: str | None = None  # a key of DIMENSIONS; only ``spend`` takes it
    limit: int | None = None

    def given(self) -> frozenset[str]:
        """The parameter names set on these filters."""
        values = {
            "since": self.since,
            "until": self.until,
            "tenant": self.tenant_id,
            "by": self.by,
            "limit": self.limit,
        }
        return frozenset(name for name, value in values.items() if value is not None)


def parse_filters(params: Mapping[str, str]) -> ReportFilters:
    """Filters from text parameters; raises ``InvalidRequest`` naming the bad one."""
    unknown = sorted(set(params) - PARAMETERS)
    if unknown:
        raise InvalidRequest(
            f"unknown report parameter {unknown[0]!r}; expected one of {sorted(PARAMETERS)}",
            param=unknown[0],
        )
    since = instant_param("since", params.get("since"))
    until = instant_param("until", params.get("until"))
    if since is not None and until is not None and until <= since:
        raise InvalidRequest("'until' must be later than 'since'", param="until")
    by = params.get("by") or None
    if by is not None and by not in DIMENSIONS:
        raise InvalidRequest(
            f"cannot group spend by {by!r}; expected one of {sorted(DIMENSIONS)}", param="by"
        )
    return ReportFilters(
        since=since,
        until=until,
        tenant_id=params.get("tenant") or None,
        by=by,
        limit=limit_param(params.get("limit")),
    )


def parse_instant(text: str) -> float:
    """Unix seconds from ``1735689600``, ``2025-01-01`` or ``2025-01-01T12:00:00Z``.

    A date is midnight UTC at its start; a date-time without an offset is UTC.
    """
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise ValueError(f"not a time: {text!r}")
        return seconds
    moment = datetime.fromisoformat(text)  # raises ValueError for anything else
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def instant_param(name: str, text: str | None) -> float | None:
    """The instant a query parameter names (None when empty), or 400 naming the forms."""
    if not text:
        return None
    try:
        return parse_instant(text)
    except ValueError:
        raise InvalidRequest(
            f"{name!r} must be unix seconds, a date (2025-01-31) or an ISO 8601 time "
            f"(2025-01-31T12:00:00Z), not {text!r}",
            param=name,
        ) from None


def limit_param(text: str | None, most: int = MAX_LIMIT) -> int | None:
    """The ``limit`` query parameter (None when empty), or 400 naming the range."""
    if not text:
        return None
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= most:
        raise InvalidRequest(
            f"'limit' must be a whole number from 1 to {most}, not {text!r}", param="limit"
        )
    return limit
