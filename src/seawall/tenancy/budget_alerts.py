"""Soft budget alerts: a warning log line, counters, and an optional webhook.

The stores report a soft limit once per account and window (``SoftLimitCrossed``);
this turns each report into an alert. The webhook is POSTed in the background with a
timeout, so a slow or dead receiver never delays a request; its failures are logged
and counted, not retried.

Webhook body (JSON)::

    {"type": "budget.soft_limit_reached",
     "budget": {"budget_id", "scope", "subject", "tenant_id", "period", "soft_usd", "hard_usd"},
     "window": {"start": ISO 8601, "end": ISO 8601 or null},
     "spent_usd": float}
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson

from seawall.monitoring.metrics import BUDGET_SOFT_ALERTS
from seawall.tenancy.budgets import SoftLimitCrossed

logger = logging.getLogger(__name__)

DEFAULT_WEBHOOK_TIMEOUT_S = 5.0


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def alert_payload(crossed: SoftLimitCrossed) -> dict[str, Any]:
    """The webhook body for one soft limit reached."""
    rule = crossed.charge.rule
    return {
        "type": "budget.soft_limit_reached",
        "budget": {
            "budget_id": rule.budget_id,
            "scope": rule.scope,
            "subject": rule.subject,
            "tenant_id": crossed.charge.tenant_id,
            "period": rule.period,
            "soft_usd": rule.soft_usd,
            "hard_usd": rule.hard_usd,
        },
        "window": {"start": _iso(crossed.window.start), "end": _iso(crossed.window.end)},
        "spent_usd": crossed.spent_usd,
    }


class SoftLimitAlerts:
    """Raises soft budget alerts.

    Counters for metrics, read as plain attributes: ``alerts`` (total),
    ``alerts_by_scope`` (per budget scope), ``webhooks_sent``, ``webhook_failures``.
    """

    def __init__(
        self, webhook_url: str | None = None, *, timeout_s: float = DEFAULT_WEBHOOK_TIMEOUT_S
    ) -> None:
        self.alerts = 0
        self.alerts_by_scope: Counter[str] = Counter()
        self.webhooks_sent = 0
        self.webhook_failures = 0
        self._webhook_url = webhook_url
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._posts: set[asyncio.Task[None]] = set()

    def notify(self, crossed: SoftLimitCrossed) -> None:
        """Alert on one soft limit reached: log, count, and POST the webhook if set."""
        rule = crossed.charge.rule
        self.alerts += 1
        self.alerts_by_scope[rule.scope] += 1
        tenant = crossed.charge.tenant_id
        BUDGET_SOFT_ALERTS.labels(rule.scope, tenant or "").inc()
        logger.warning(
            "budget soft limit reached: %s budget of %s %r%s spent %.6f USD of its %g USD "
            "soft limit (window from %s)",
            rule.period,
            rule.scope,
            rule.subject,
            f" (tenant {tenant!r})" if tenant is not None else "",
            crossed.spent_usd,
            rule.soft_usd,
            _iso(crossed.window.start),
        )
        if self._webhook_url is None:
            return
        task = asyncio.get_running_loop().create_task(self._post(self._webhook_url, crossed))
        self._posts.add(task)
        task.add_done_callback(self._posts.discard)

    async def aclose(self) -> None:
        """Wait for webhooks in flight (each bounded by its timeout), then close."""
        if self._posts:
            await asyncio.gather(*self._posts, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _post(self, url: str, crossed: SoftLimitCrossed) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        body = orjson.dumps(alert_payload(crossed))
        headers = {"content-type": "application/json"}
        try:
            async with self._session.post(url, data=body, headers=headers) as response:
                ok = response.status < 300
                status = str(response.status)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            ok, status = False, f"{type(exc).__name__}: {exc}"
        if ok:
            self.webhooks_sent += 1
            return
        self.webhook_failures += 1
        # Not the URL: webhook URLs often carry a secret token.
        logger.warning("budgets: soft limit webhook failed (%s)", status)
