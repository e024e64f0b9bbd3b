"""What happens after a detection, off the request path: the metrics, the detection
log, the route's revert switch (audit-logged when it flips) and the user's strikes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from seawall.config.guard import Action
from seawall.guard.auto_revert import RevertPolicy, RevertSwitch, SwitchEvent, switch_tenant
from seawall.guard.detection import Detection
from seawall.guard.detection_log import DetectionEvent
from seawall.guard.metrics import DETECTIONS, REVERT_SWITCHES
from seawall.guard.off_topic import OffTopicCheck
from seawall.guard.parts import GuardStores
from seawall.guard.policy import Applied
from seawall.pipeline.background import Background
from seawall.pipeline.context import RequestContext

logger = logging.getLogger(__name__)
# Route switches are audit events: their own logger, so operators can route them apart.
audit = logging.getLogger("seawall.audit")
# How often switches whose cool-down ended are looked for (and audit-logged).
_SWEEP_SECONDS = 1.0


class GuardEvents:
    """Records detections and acts on them, in the background."""

    def __init__(
        self,
        stores: GuardStores,
        switch: RevertSwitch | None,
        policy: RevertPolicy,
        background: Background,
        off_topic: Callable[[float], OffTopicCheck] | None = None,
    ) -> None:
        # Makes the off-topic check for a threshold (None: no profile uses it).
        self._off_topic = off_topic
        self._stores = stores
        self._switch = switch
        self._policy = policy
        self._background = background
        self._sweeper: asyncio.Task[None] | None = None

    def input(
        self, ctx: RequestContext, applied: Applied, detections: list[Detection], action: Action
    ) -> None:
        """A request's input checks found ``detections``; ``action`` was taken."""
        self._found(ctx, applied, detections, action, "input")

    def output(
        self, ctx: RequestContext, applied: Applied, detections: list[Detection], action: Action
    ) -> None:
        """An answer's output checks found ``detections``; ``action`` was taken."""
        self._found(ctx, applied, detections, action, "output")

    def off_topic(self, ctx: RequestContext, applied: Applied, answer: str) -> None:
        """Compare the answer with the question, off the request path; flag it if unrelated."""
        if self._off_topic is None:
            return
        question = _last_user_text(ctx.body.get("messages"))
        if question and answer:
            self._run(self._compare(ctx, applied, question, answer))

    async def _compare(
        self, ctx: RequestContext, applied: Applied, question: str, answer: str
    ) -> None:
        assert self._off_topic is not None
        check = self._off_topic(applied.profile.output.off_topic_below)
        found = await check.check(question, answer)
        if found is not None:
            self.output(ctx, applied, [found], "flag")

    def strike(self, tenant: str, user: str | None) -> None:
        """Count a strike against ``user`` (nothing without an end user)."""
        if user is not None:
            self._run(self._stores.strikes.add(tenant, user))

    def _found(
        self,
        ctx: RequestContext,
        applied: Applied,
        detections: list[Detection],
        action: Action,
        phase: str,
    ) -> None:
        for detection in detections:
            DETECTIONS.labels(detection.rule, action, phase).inc()
        principal = ctx.principal
        event = DetectionEvent(
            request_id=ctx.request_id,
            tenant_id=principal.tenant_id if principal is not None else "",
            detections=tuple(detections),
            action=action,
            phase=phase,
            key_id=principal.key_id if principal is not None else None,
            user=ctx.end_user(),
            client_ip=ctx.identity.client_ip,
            route=applied.route,
            model=applied.route,
            excerpt=max(detections, key=lambda d: d.score).detail,
        )
        self._run(self._log(event))
        if applied.revertible and self._switch is not None and action != "allow":
            tenant = switch_tenant(self._policy, event.tenant_id)
            self._run(self._count(applied.route, tenant))

    async def _log(self, event: DetectionEvent) -> None:
        # The log fails open (it counts what it lost); a detection never fails a request.
        await self._stores.detections.add(event)

    async def _count(self, route: str, tenant: str | None) -> None:
        assert self._switch is not None
        switched = await self._switch.record(route, tenant)
        if switched is not None:
            announce(switched)

    def start(self) -> None:
        """Begin looking for switches whose cool-down ended."""
        if self._switch is not None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="guard")

    async def _sweep(self) -> None:
        assert self._switch is not None
        while True:
            await asyncio.sleep(_SWEEP_SECONDS)
            try:
                for event in await self._switch.sweep():
                    announce(event)
            except Exception:
                logger.exception("reading the guard's revert switches failed")

    async def aclose(self) -> None:
        """Stop sweeping."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper

    def _run(self, work: Coroutine[Any, Any, Any]) -> None:
        self._background.run(_logged(work))


def announce(event: SwitchEvent) -> None:
    """Audit-log a route's switch and count it."""
    state = "on" if event.active else "off"
    REVERT_SWITCHES.labels(event.route, state).inc()
    who = f"tenant {event.tenant}" if event.tenant is not None else "every tenant"
    if event.active:
        audit.warning(
            "guard revert on: route %s for %s runs its safe version and profile "
            "(%d detections in the window)%s",
            event.route,
            who,
            event.detections,
            " (decided locally: Redis unavailable)" if event.local else "",
        )
    else:
        audit.warning("guard revert off: route %s for %s is back to its version", event.route, who)


def _last_user_text(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else ""
    return ""


async def _logged(work: Coroutine[Any, Any, Any]) -> None:
    try:
        await work
    except Exception:
        logger.exception("recording a guard detection failed")
