"""The response cache stage: answer repeated requests from the cache, keep new answers.

It sits after routing (the key names the public model that answers) and before
client limits and budgets: a hit costs nothing upstream, so it books no tokens,
holds no budget and costs $0 on its record. Each chat request gets one
``x-seawall-cache`` value, on the response and on its record:

* ``hit-exact``: answered from the cache (with an ``age`` header, in seconds);
* ``hit-semantic``: answered by the entry of a near-repeat (``cache.semantic``);
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from seawall.cache.embedder import Vector
from seawall.cache.fields import exact_key, keyed_fields
from seawall.cache.invalidation import Invalidations
from seawall.cache.policy import BODY_FIELD, Directive, deterministic, directive_of
from seawall.cache.semantic import Question, SemanticCache, question_of
from seawall.cache.store import CacheEntry, CacheStore
from seawall.cache.streams import RecordingStream, ReplayStream
from seawall.config.cache import CacheSettings
from seawall.errors import SeawallError
from seawall.pipeline.background import Background
from seawall.pipeline.context import Identity, RequestContext, new_request_id
from seawall.pipeline.pipeline import Handler, Reply
from seawall.providers.base import ChatResult, EmbeddingResult, JSONObject, Usage
from seawall.tenancy.principal import DEFAULT_TENANT, Principal

HIT_EXACT = "hit-exact"
HIT_SEMANTIC = "hit-semantic"
MISS = "miss"
BYPASS = "bypass"
HEADER = "x-seawall-cache"

# Finish reasons of a complete answer; "length" (truncated) and "content_filter" are not.
_COMPLETE = frozenset({"stop", "tool_calls", "function_call"})


class ResponseCache:
    """Answers chat requests from a ``CacheStore`` and keeps the answers that may be reused.

    ``counts`` holds requests by cache result (``hit-exact``, ``hit-semantic``,
    ``miss``, ``bypass``) and ``stored``, the answers kept, for ``GET /admin/cache``.
    """

    name = "cache"

    def __init__(
        self,
        store: CacheStore,
        invalidations: Invalidations,
        settings: CacheSettings,
        *,
        semantic: SemanticCache | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.semantic = semantic
        self.invalidations = invalidations
        self.counts: Counter[str] = Counter()
        # Hit counts, kept off the response path.
        self._counting = Background()
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
            scope, model = self._scope(ctx), self._model(ctx)
            key = exact_key(scope, model, ctx.body)
            if directive.lookup:
                entry = await self.store.get(key)
                if entry is not None and self._usable(entry, directive):
                    return self._hit(ctx, key, entry, HIT_EXACT)
            # Past an exact hit: the semantic context, for the lookup and for learning.
            question = self._question(scope, model, ctx.body)
            vector: Vector | None = None
            if directive.lookup and question is not None:
                found, vector = await self._near_repeat(question, directive)
                if found is not None:
                    return self._hit(ctx, *found, HIT_SEMANTIC)
            self._result(ctx, MISS if directive.lookup else BYPASS)
            learn = None if question is None else _Learn(question, vector)
            return await self._answer_and_keep(ctx, key, call_next, learn)

        return cache

    def _question(self, scope: str, model: str, body: dict[str, Any]) -> Question | None:
        if self.semantic is None:
            return None
        return question_of(self.semantic.settings, scope, model, body)

    async def _near_repeat(
        self, question: Question, directive: Directive
    ) -> tuple[tuple[str, CacheEntry] | None, Vector | None]:
        """The key and usable entry of a stored near-repeat, and the question's vector."""
        assert self.semantic is not None
        candidate, vector = await self.semantic.find(question)
        if candidate is None:
            return None, vector
        entry = await self.store.get(candidate.key)
        if entry is None or self.invalidations.stale(entry):
            self.semantic.forget(question, candidate.key)  # gone for every request
            return None, vector
        if not self._usable(entry, directive):
            return None, vector  # too old for this request's max-age only
        return (candidate.key, entry), vector

    async def start(self) -> None:
        """Load invalidations and start reloading them; read what other instances learned."""
        await self.invalidations.start()
        if self.semantic is not None:
            await self.semantic.catch_up()

    async def aclose(self) -> None:
        """Stop reloading invalidations; stop the embedder's thread."""
        await self._counting.drain()
        await self.invalidations.aclose()
        if self.semantic is not None:
            await self.semantic.embedder.aclose()

    async def warm(
        self, source: str, target: str, limit: int, answer: Handler | None
    ) -> dict[str, int]:
        """Give ``target`` the ``limit`` most requested entries of ``source``.

        With ``answer`` (a pipeline that routes and answers), each entry's request is
        asked again of ``target`` and the answer kept under ``target``'s key, in the
        entry's tenant: a new model starts with its own answers to the questions asked
        most. Without it the entries are copied as they are, for a model that answers
        as ``source`` does (a renamed or re-released one). Returns how many entries
        were warmed, and skipped (no request stored, or the answer not kept).
        """
        warmed = skipped = 0
        for entry in await self.store.top(source, limit):
            if entry.request is None:
                skipped += 1
                continue
            request = {**entry.request, "model": target}
            key = exact_key(self._scope_of(entry.tenant), target, request)
            if answer is None:
                copy = CacheEntry(entry.body, self._wall_clock(), entry.tenant, target, request)
                await self.store.put(key, copy, self._settings.ttl_seconds)
                warmed += 1
                continue
            try:
                await answer(warm_context(entry.tenant, request))
            except SeawallError:
                skipped += 1
                continue
            if await self.store.get(key) is None:  # not kept: a fallback's, a cut answer
                skipped += 1
            else:
                warmed += 1
        return {"warmed": warmed, "skipped": skipped}

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

    def _hit(self, ctx: RequestContext, key: str, entry: CacheEntry, result: str) -> Reply:
        self._result(ctx, result)
        self._counting.run(self.store.hit(key, entry))
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

    async def _answer_and_keep(
        self, ctx: RequestContext, key: str, call_next: Handler, learn: _Learn | None
    ) -> Reply:
        reply = await call_next(ctx)
        if isinstance(reply, ChatResult):
            await self._keep(ctx, key, reply.body, learn)
            return reply
        if isinstance(reply, EmbeddingResult) or ctx.body.get("logprobs"):
            return reply  # a stream's logprobs are not assembled: such streams are not kept

        async def keep(body: JSONObject) -> None:
            await self._keep(ctx, key, body, learn)

        return RecordingStream(reply, keep)

    async def _keep(
        self, ctx: RequestContext, key: str, body: JSONObject, learn: _Learn | None
    ) -> None:
        if not self._complete(ctx, body):
            return
        request = keyed_fields(ctx.body)
        entry = CacheEntry(body, self._wall_clock(), self._tenant(ctx), self._model(ctx), request)
        await self.store.put(key, entry, self._settings.ttl_seconds)
        self.counts["stored"] += 1
        if learn is not None and self.semantic is not None:
            vector = learn.vector
            if vector is None:  # not looked up (no-cache): embed it now
                vector = await self.semantic.vector(learn.question)
            if vector is not None:
                await self.semantic.learn(learn.question, key, vector)

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
        return self._scope_of(self._tenant(ctx))

    def _scope_of(self, tenant: str | None) -> str:
        if self._settings.shared_across_tenants:
            return "shared"
        return "tenant=" + (tenant or "")

    @staticmethod
    def _tenant(ctx: RequestContext) -> str | None:
        return ctx.principal.tenant_id if ctx.principal is not None else None

    @staticmethod
    def _model(ctx: RequestContext) -> str:
        assert ctx.public_model is not None  # the stage runs after routing
        return ctx.public_model.name


@dataclass(frozen=True, slots=True)
class _Learn:
    """What the semantic cache learns once an eligible request's answer is kept."""

    question: Question
    vector: Vector | None


def warm_context(tenant: str | None, request: dict[str, Any]) -> RequestContext:
    """A request made by ``seawall cache warm`` on behalf of ``tenant`` (recorded as such)."""
    ctx = RequestContext(
        request_id=new_request_id(),
        protocol="openai",
        operation="chat",
        raw_body=b"",
        identity=Identity(feature="cache-warm"),
        principal=Principal("cache-warm", tenant or DEFAULT_TENANT, "admin", admin=True),
        # Asked again even if an entry exists, and kept.
        cache_control="no-cache",
    )
    ctx.body = request
    return ctx


class CacheFieldRemover:
    """With caching off, only removes the ``seawall_cache`` body field before the upstream."""

    name = "cache"

    def wrap(self, call_next: Handler) -> Handler:
        """Drop the field, then ``call_next``."""

        async def no_cache(ctx: RequestContext) -> Reply:
            ctx.body.pop(BODY_FIELD, None)
            return await call_next(ctx)

        return no_cache
