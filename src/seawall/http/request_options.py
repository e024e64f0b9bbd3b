"""Per-request options a client sends as headers: its deadline and its priority."""

from __future__ import annotations

import math

from seawall.errors import InvalidRequest
from seawall.http.incoming import HeaderLookup
from seawall.resilience.admission import Priority

DEADLINE_HEADER = "x-seawall-deadline-ms"


def read_deadline(headers: HeaderLookup, now: float) -> float | None:
    """The absolute deadline (in ``now``'s clock) from ``x-seawall-deadline-ms``, or None."""
    raw = headers.get(DEADLINE_HEADER)
    if raw is None:
        return None
    try:
        milliseconds = float(raw)
    except ValueError:
        milliseconds = math.nan
    if not math.isfinite(milliseconds) or milliseconds <= 0:
        raise InvalidRequest(
            f"The header {DEADLINE_HEADER} must be a positive number of milliseconds, "
            f"got {raw[:40]!r}.",
            param=DEADLINE_HEADER,
        )
    return now + milliseconds / 1000.0


def read_priority(headers: HeaderLookup) -> Priority:
    """The admission priority from ``x-seawall-priority`` (normal when absent)."""
    return Priority.parse(headers.get("x-seawall-priority"))
