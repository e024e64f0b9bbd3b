"""The Guard stage: input checks before the request goes anywhere, the route's prompt
template and data separation, and output checks on the answer, streamed or not.

Order of work for a chat request:

1. the end user's strikes: a blocked user gets 403 ``user_blocked`` at once (so a
   blocked attacker cannot escalate further);
2. the profile's input checks on the untrusted parts (``guard.inspection``); the
   strongest action the detections call for wins: ``block`` (400 ``prompt_rejected``,
   a strike), ``hold`` (kept in the review queue, 400 ``prompt_held_for_review``, a
   strike), ``flag`` (answered, ``x-seawall-guard: flagged``), ``allow``;
3. detections go to the log, the metrics and the route's revert switch, off the
   request path;
4. the route's template (its system part first) and, opt-in, structured separation;
   a canary token when the profile plants one;
5. the answer passes the profile's output checks (``guard.answers``).

Embeddings pass untouched: they produce no text anyone reads as instructions.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
from typing import Any

from seawall.config.guard import SEVERITY, Action
from seawall.errors import PromptHeld, PromptRejected, UserBlocked
from seawall.guard.answers import guard_reply
from seawall.guard.canary import new_canary, plant
from seawall.guard.detection import Detection
from seawall.guard.events import GuardEvents
from seawall.guard.inspection import InputInspector
from seawall.guard.metrics import USER_BLOCKS
from seawall.guard.parts import GuardStores
from seawall.guard.policy import Applied, PolicyResolver
from seawall.guard.review_queue import ReviewItem
from seawall.guard.separation import prepend_system, separate
from seawall.pipeline.context import RequestContext
from seawall.pipeline.pipeline import Handler, Reply

GUARD_HEADER = "x-seawall-guard"
_SYSTEM_ROLES = ("system", "developer")


class Guard:
    """Pipeline stage: prompt-injection defences around the rest of the pipeline."""

    name = "guard"

    def __init__(
        self,
        resolver: PolicyResolver,
        inspector: InputInspector,
        stores: GuardStores,
        events: GuardEvents,
        secret: bytes | None = None,
    ) -> None:
        self._resolver = resolver
        self._inspector = inspector
        self._stores = stores
        self._events = events
        # Seeds the data boundaries: the same request gets the same boundary (its cache
        # key stays stable) and nobody without the secret can predict it.
        self._secret = secret or secrets.token_bytes(32)

    def wrap(self, call_next: Handler) -> Handler:
        """Check the request, shape its prompt, check its answer."""

        async def guard(ctx: RequestContext) -> Reply:
            if ctx.operation != "chat" or ctx.public_model is None:
                return await call_next(ctx)
            principal = ctx.principal
            tenant = principal.tenant_id if principal is not None else ""
            user = ctx.end_user()
            if user is not None:
                state = await self._stores.strikes.state(tenant, user)
                if state.blocked:
                    USER_BLOCKS.inc()
                    raise UserBlocked(
                        "This user is blocked for a while after repeated rejected requests.",
                        retry_after=state.retry_after,
                    )
            applied = await self._resolver.resolve(
                ctx.public_model.name, principal.tier if principal is not None else None, tenant
            )
            given = ctx.body.get("messages")
            messages = [m for m in given if isinstance(m, dict)] if isinstance(given, list) else []
            detections = await self._inspector.inspect(messages, applied.profile)
            if detections:
                await self._act(ctx, applied, detections, tenant, user, messages)
            canary, system = self._shape(ctx, applied, messages)
            reply = await call_next(ctx)
            return guard_reply(ctx, reply, applied, canary, system, self._events)

        return guard

    async def _act(
        self,
        ctx: RequestContext,
        applied: Applied,
        detections: list[Detection],
        tenant: str,
        user: str | None,
        messages: list[Any],
    ) -> None:
        action = strongest(applied, detections)
        self._events.input(ctx, applied, detections, action)
        rules = ", ".join(sorted({d.rule for d in detections if _acts(applied, d, action)}))
        if action == "block":
            self._events.strike(tenant, user)
            raise PromptRejected(
                f"The request was rejected by Seawall's prompt guard (rules: {rules}). "
                f"Rephrase the request; request id {ctx.request_id}."
            )
        if action == "hold":
            item = await self._stores.reviews.add(
                ReviewItem(
                    tenant_id=tenant,
                    messages=messages,
                    detections=tuple(detections),
                    key_id=ctx.principal.key_id if ctx.principal is not None else None,
                    user=user,
                    request_id=ctx.request_id,
                    route=applied.route,
                    model=applied.route,
                )
            )
            self._events.strike(tenant, user)
            raise PromptHeld(
                f"The request was held for review by Seawall's prompt guard (rules: {rules}; "
                f"review {item.review_id}). It was not sent to a model."
            )
        if action == "flag":
            ctx.response_headers[GUARD_HEADER] = "flagged"

    def _shape(
        self, ctx: RequestContext, applied: Applied, messages: list[Any]
    ) -> tuple[str | None, str | None]:
        """Apply the route's template and separation and plant a canary: the canary (if
        any) and the system prompt the answer must not leak (if any)."""
        system = applied.system
        canary = None
        if applied.profile.output.canary:
            canary = new_canary(self._rng(ctx, b"canary"))
            system = plant(system, canary)
        # Without a template the application's own system prompt is the one to protect.
        own = [m.get("content") for m in messages if m.get("role") in _SYSTEM_ROLES]
        protected = "\n".join([system or "", *(c for c in own if isinstance(c, str))]).strip()
        if system is not None:
            if applied.separation:
                shaped = separate(messages, system, rng=self._rng(ctx, b"boundary")).messages
            else:
                shaped = prepend_system(messages, system)
            ctx.body["messages"] = shaped
        return canary, protected or None

    def _rng(self, ctx: RequestContext, purpose: bytes) -> random.Random:
        digest = hmac.new(self._secret, purpose + ctx.raw_body, hashlib.sha256).digest()
        return random.Random(digest)


def strongest(applied: Applied, detections: list[Detection]) -> Action:
    """The strongest action the detections call for under the request's profile."""
    actions = [applied.profile.action_for(d.rule) for d in detections]
    return max(actions, key=SEVERITY.__getitem__)


def _acts(applied: Applied, detection: Detection, action: Action) -> bool:
    return applied.profile.action_for(detection.rule) == action
