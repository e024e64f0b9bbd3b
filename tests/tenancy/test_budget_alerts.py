"""Soft budget alerts: once per window, as a log line, a counter and a webhook POST."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from seawall.stores.redis_multiplex import MultiplexedRedis
from seawall.tenancy.budget_alerts import SoftLimitAlerts
from seawall.tenancy.budget_redis import RedisBudgetStore
from seawall.tenancy.budgets import BudgetRule, BudgetStore, Charge, MemoryBudgetStore
from tests.ports import free_port
from tests.tenancy.budget_fixtures import budget_prefix, redis_client
from tests.tenancy.wall_clock import FakeWallClock

__all__ = ["budget_prefix", "redis_client"]


class WebhookReceiver:
    """A tiny HTTP server on 127.0.0.1 that keeps every JSON body POSTed to it."""

    def __init__(self, status: int = 204) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.port = free_port()
        self._status = status
        app = web.Application()
        app.router.add_post("/hooks/budget", self._receive)
        self._runner = web.AppRunner(app)

    @property
    def url(self) -> str:
        """Where to POST."""
        return f"http://127.0.0.1:{self.port}/hooks/budget"

    async def start(self) -> None:
        """Listen."""
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        """Stop listening."""
        await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        return web.Response(status=self._status)


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    """A webhook receiver, listening."""
    server = WebhookReceiver()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(params=["memory", "redis"])
def store_and_clock(
    request: pytest.FixtureRequest, budget_prefix: str, redis_client: MultiplexedRedis
) -> tuple[BudgetStore, FakeWallClock]:
    """Each kind of store, on a wall clock the test moves."""
    clock = FakeWallClock("2026-03-15T10:00:00")
    if request.param == "memory":
        return MemoryBudgetStore(clock), clock
    return RedisBudgetStore(redis_client, wall_clock=clock, prefix=budget_prefix), clock


SEARCH = Charge(
    BudgetRule("feature", "search", "daily", soft_usd=1.0, hard_usd=5.0, budget_id="bud_1"),
    "acme",
)


async def test_a_soft_limit_alerts_once_per_window_with_a_webhook(
    receiver: WebhookReceiver,
    store_and_clock: tuple[BudgetStore, FakeWallClock],
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, clock = store_and_clock
    alerts = SoftLimitAlerts(receiver.url)

    async def request(cost: float) -> None:
        for crossed in await store.settle(await store.reserve([SEARCH], cost), cost):
            alerts.notify(crossed)

    with caplog.at_level(logging.WARNING, logger="seawall.tenancy.budget_alerts"):
        for _ in range(4):
            await request(0.3)  # 1.2 USD: past the soft limit at the fourth
        clock.set("2026-03-16T09:00:00")
        for _ in range(5):
            await request(0.25)  # reaches exactly 1.0 at the fourth
    await alerts.aclose()

    assert (alerts.alerts, alerts.webhooks_sent, alerts.webhook_failures) == (2, 2, 0)
    assert alerts.alerts_by_scope == {"feature": 2}
    assert caplog.text.count("budget soft limit reached") == 2
    assert "'search' (tenant 'acme')" in caplog.text
    assert receiver.bodies[0] == {
        "type": "budget.soft_limit_reached",
        "budget": {
            "budget_id": "bud_1",
            "scope": "feature",
            "subject": "search",
            "tenant_id": "acme",
            "period": "daily",
            "soft_usd": 1.0,
            "hard_usd": 5.0,
        },
        "window": {"start": "2026-03-15T00:00:00Z", "end": "2026-03-16T00:00:00Z"},
        "spent_usd": pytest.approx(1.2),
    }
    assert receiver.bodies[1]["window"]["start"] == "2026-03-16T00:00:00Z"
    assert receiver.bodies[1]["spent_usd"] == pytest.approx(1.0)


async def test_a_failing_webhook_is_counted_and_logged_never_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rejecting = WebhookReceiver(status=500)
    await rejecting.start()
    nobody = SoftLimitAlerts(f"http://127.0.0.1:{free_port()}/hook", timeout_s=2.0)
    refused = SoftLimitAlerts(rejecting.url, timeout_s=2.0)
    store = MemoryBudgetStore(FakeWallClock())
    try:
        crossed = await store.settle(await store.reserve([SEARCH], 2.0), 2.0)
        with caplog.at_level(logging.WARNING, logger="seawall.tenancy.budget_alerts"):
            nobody.notify(crossed[0])
            refused.notify(crossed[0])
            await nobody.aclose()
            await refused.aclose()
    finally:
        await rejecting.stop()

    assert (nobody.alerts, nobody.webhook_failures) == (1, 1)
    assert (refused.alerts, refused.webhook_failures, len(rejecting.bodies)) == (1, 1, 1)
    assert "soft limit webhook failed (500)" in caplog.text
    assert "/hook" not in caplog.text  # the URL may carry a secret


async def test_without_a_webhook_an_alert_is_a_log_line_and_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    alerts = SoftLimitAlerts()
    store = MemoryBudgetStore(FakeWallClock())
    crossed = await store.settle(await store.reserve([SEARCH], 1.5), 1.5)
    with caplog.at_level(logging.WARNING, logger="seawall.tenancy.budget_alerts"):
        alerts.notify(crossed[0])
    await alerts.aclose()
    assert alerts.alerts == 1
    assert "daily budget of feature 'search'" in caplog.text
