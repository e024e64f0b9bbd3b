"""Counting the requests Seawall refuses, and saying so in the log without flooding it.

A refusal (429, 503 or 504 that Seawall decided: no capacity, circuits open, queue
full, deadline passed) costs a counter increment. At most once per ``interval``
seconds one log line sums up what was refused since the last one, so an overload
that refuses thousands of requests a second writes one line a second, not thousands,
and never a traceback.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from seawall.errors import SeawallError

logger = logging.getLogger("seawall.rejections")


class RejectionLog:
    """Counts refusals by error code (``total``) and logs a summary at most every interval."""

    def __init__(self, now: Callable[[], float], interval: float = 1.0) -> None:
        self.total: Counter[str] = Counter()
        self._now = now
        self._interval = interval
        self._pending: Counter[str] = Counter()
        self._next_log = 0.0

    def note(self, error: SeawallError) -> None:
        """Count one refusal; log the summary if the interval has passed."""
        code = error.code or type(error).__name__
        self.total[code] += 1
        self._pending[code] += 1
        now = self._now()
        if now >= self._next_log:
            self._next_log = now + self._interval
            summary = " ".join(f"{code}={count}" for code, count in sorted(self._pending.items()))
            logger.warning("refused requests since the last report: %s", summary)
            self._pending.clear()
