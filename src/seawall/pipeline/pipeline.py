"""The request pipeline: ordered stages composed once, at start-up.

Each stage wraps the rest of the pipeline (``wrap(call_next) -> handler``), so a
stage can act before (authenticate, decode, route), after (record), or instead
of the rest (a cache hit, in a later issue). The innermost handler executes the
request against a backend. Adding a capability means adding a stage to the
list in ``build_pipeline``; no other stage changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from seawall.pipeline.context import RequestContext
from seawall.providers.base import ChatResult, ChatStream, EmbeddingResult

Reply = ChatResult | EmbeddingResult | ChatStream
Handler = Callable[[RequestContext], Awaitable[Reply]]


class Stage(Protocol):
    """One step of the pipeline."""

    name: str

    def wrap(self, call_next: Handler) -> Handler:
        """Return a handler doing this stage's work around ``call_next``."""
        ...


class Pipeline:
    """Stages composed around a terminal handler."""

    def __init__(self, stages: Sequence[Stage], terminal: Handler) -> None:
        handler = terminal
        for stage in reversed(stages):
            handler = stage.wrap(handler)
        # Carries one request through every stage (the outermost stage's handler itself:
        # each layer of a coroutine chain is paid again whenever the request resumes).
        self.run: Handler = handler
        self.stage_names = tuple(stage.name for stage in stages)
