"""What a shared store last found about a deployment: all clear, and for how long to trust it.

Most requests go to deployments whose breaker is closed and whose provider budget
has nothing to enforce (no configured limit, no learned rate, not parked). Asking
Redis so, on every request, costs a round trip on the request path for an answer
that almost never changes. So the Redis stores remember, per deployment, when they
last heard "all clear" (from any reply) and answer from memory for ``fresh_seconds``
after it; any other answer, or this instance's own bad news, forgets it at once.

The price: a breaker tripped or a rate learned by another instance reaches this one
within ``fresh_seconds`` (or with its next call's reply), not at once. Nothing is
written while all is clear, so the shared state itself is the same either way.
"""

from __future__ import annotations

from collections.abc import Callable

# How long an "all clear" from Redis is trusted without asking again.
FRESH_SECONDS = 0.1


class ClearView:
    """Deployments recently found all clear, each until when."""

    def __init__(self, now: Callable[[], float], fresh_seconds: float = FRESH_SECONDS) -> None:
        self._now = now
        self._fresh_seconds = fresh_seconds
        self._until: dict[str, float] = {}

    def clear(self, deployment: str) -> bool:
        """Whether ``deployment`` was found all clear recently enough to skip asking."""
        until = self._until.get(deployment)
        return until is not None and self._now() < until

    def saw(self, deployment: str, clear: bool) -> None:
        """Remember what a reply said; anything but "all clear" is asked again next time."""
        if clear:
            self._until[deployment] = self._now() + self._fresh_seconds
        else:
            self._until.pop(deployment, None)
