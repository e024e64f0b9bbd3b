"""The response cache stage: answer repeated requests from the cache, keep new answers.

It sits after routing (the key names the public model that answers) and before
client limits and budgets: a hit costs nothing upstream, so it books no tokens,
holds no budget and costs $0 on its record. Each chat request gets one
``x-seawall-cache`` value, on the response and on its record:

* ``hit-exact``: answered from the cache (with an ``age`` header, in seconds);
* ``miss``: looked up, not found (or stale), answered upstream, and kept if it may be;
* ``bypass``: the cache was not consulted (not deterministic, ``no-store``,
  ``no-cache``).

An answer is kept only when it is complete and the public model itself gave it:
every choice finished with ``stop`` or ``tool_calls`` (not truncated by
``length``, not filtered), from the requested model and not a fallback, and, for a
stream, only once the stream ended normally. Entries are scoped to the tenant unless
``cache.shared_across_tenants`` is set. Policy details: ``cache.policy``; key:
``cache.fields``.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from seawall.cache.fields import exact_key
from seawall.cache.invalidation import Invalidations
from seawall.cache.policy import Directive, deterministic, directive_of
from seawall.cache.store import CacheEntry, CacheStore
from seawall.cache.streams import RecordingStream, ReplayStream
from seawall.config.cache import CacheSettings
from seawall.pipeline.context import RequestContext
from seawall.pipeline.pipeline import Handler, Reply
from seawall.providers.base import ChatResult, EmbeddingResult, JSONObject, Usage

HIT_EXACT = "hit-exact"
MISS = "miss"
BYPASS = "bypass"
HEADER = "x-seawall-cache"

# Finish reasons of a complete answer; "length" (truncated) and "content_filter" are not.
_COMPLETE = frozenset({"stop", "tool_calls", "function_call"})


class ResponseCache:
    """Answers chat requests from a ``CacheStore`` and keeps the answers that may be reused.

    ``counts`` holds requests by cache result (``hit-exact``, ``miss``, ``bypass``)
    and ``stored``, the answers kept, for metrics and ``GET /admin/cache``.
    """

    name = "cache"

    def __init__(
        self,
        store: CacheStore,
        invalidations: Invalidations,
        settings: CacheSettings,
        *,
        wall_clock: Any = time.time,
    ) -> None:
        self.store = store
        self.invalidations = invalidations
        self.counts: Counter[str] = Counter()
        self._settings = settings
        self._wall_clock = wall_clock

    def wrap(self, call_next: Handler) -> Handler:
        """Answer from the cache, or call ``call_next`` and keep what it answers."""

        async def cache(ctx: RequestContext) -> Reply:
            if ctx.operation != "chat":
                return await call_next(ctx)
            directive = directive_of(ctx.cache_control, ctx.body)
            if not self._cacheable(ctx, directive):
                self._result(ctx, BYPASS)
                return await call_next(ctx)
            key = exact_key(self._scope(ctx), self._model(ctx), ctx.body)
            if directive.lookup:
                entry = await self.store.get(key)
                if entry is not None and self._usable(entry, directive):
                    return self._hit(ctx, entry)
                self._result(ctx, MISS)
            else:
                self._result(ctx, BYPASS)
            return await self._answer_and_keep(ctx, key, call_next)

        return cache

    def _cacheable(self, ctx: RequestContext, directive: Directive) -> bool:
        if directive.no_store:
            return False
        if directive.max_age is not None or not self._settings.deterministic_only:
            return True
        return deterministic(ctx.body)

    def _usable(self, entry: CacheEntry, directive: Directive) -> bool:
        too_old = (
            directive.max_age is not None
            and self._wall_clock() - entry.stored_at > directive.max_age
        )
        return not too_old and not self.invalidations.stale(entry)

    def _hit(self, ctx: RequestContext, entry: CacheEntry) -> Reply:
        self._result(ctx, HIT_EXACT)
        age = max(0, int(self._wall_clock() - entry.stored_at))
        ctx.response_headers["age"] = str(age)
        # A response of its own: the stored answer under this request's id.
        body = {**entry.body, "id": "chatcmpl-" + ctx.request_id.removeprefix("req_")}
        ctx.usage = Usage()
        if ctx.stream:
            options = ctx.body.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            return ReplayStream(body, include_usage=include_usage)
        return ChatResult(body, Usage())

    async def _answer_and_keep(self, ctx: RequestContext, key: str, call_next: Handler) -> Reply:
        reply = await call_next(ctx)
        if isinstance(reply, ChatResult):
            await self._keep(ctx, key, reply.body)
            return reply
        if isinstance(reply, EmbeddingResult) or ctx.body.get("logprobs"):
            return reply  # a stream's logprobs are not assembled: such streams are not kept

        async def keep(body: JSONObject) -> None:
            await self._keep(ctx, key, body)

        return RecordingStream(reply, keep)

    async def _keep(self, ctx: RequestContext, key: str, body: JSONObject) -> None:
        if not self._complete(ctx, body):
            return
        entry = CacheEntry(body, self._wall_clock(), self._tenant(ctx), self._model(ctx))
        await self.store.put(key, entry, self._settings.ttl_seconds)
        self.counts["stored"] += 1

    def _complete(self, ctx: RequestContext, body: JSONObject) -> bool:
        """A whole answer from the requested model itself (no fallback, nothing cut)."""
        if ctx.response_headers.get("x-seawall-model") != self._model(ctx):
            return False
        choices = body.get("choices") or ()
        return bool(choices) and all(
            isinstance(choice, dict) and choice.get("finish_reason") in _COMPLETE
            for choice in choices
        )

    def _result(self, ctx: RequestContext, result: str) -> None:
        ctx.cache = result
        ctx.response_headers[HEADER] = result
        self.counts[result] += 1

    def _scope(self, ctx: RequestContext) -> str:
        if self._settings.shared_across_tenants:
            return "shared"
        return "tenant=" + (self._tenant(ctx) or "")

    @staticmethod
    def _tenant(ctx: RequestContext) -> str | None:
        return ctx.principal.tenant_id if ctx.principal is not None else None

    @staticmethod
    def _model(ctx: RequestContext) -> str:
        assert ctx.public_model is not None  # the stage runs after routing
        return ctx.public_model.name
