"""Execution: the innermost handler, calling the chosen deployment's backend."""

from __future__ import annotations

from collections.abc import Mapping

from seawall.config.schema import ProviderKind
from seawall.pipeline.context import RequestContext
from seawall.pipeline.pipeline import Handler, Reply
from seawall.providers.base import Backend


def executor(backends: Mapping[ProviderKind, Backend]) -> Handler:
    """The terminal handler: one upstream call (retries and fallback come later)."""
    by_kind = dict(backends)

    async def execute(ctx: RequestContext) -> Reply:
        deployment = ctx.deployment
        assert deployment is not None, "route stage runs before execute"
        backend = by_kind[deployment.provider]
        # A shallow copy: the client's body stays as sent for recording and caching.
        body = {**ctx.body, "model": deployment.model}
        if ctx.operation == "embeddings":
            return await backend.embed(deployment, body)
        if ctx.stream:
            return await backend.open_stream(deployment, body)
        return await backend.chat(deployment, body)

    return execute
