"""The running guard: its stage, its stores and what it does in the background,
built from the ``guard:`` section."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from seawall.cache.embedder import LocalEmbedder
from seawall.config.guard import GuardSettings
from seawall.guard.auto_revert import RevertPolicy
from seawall.guard.auto_revert_redis import revert_switch
from seawall.guard.classifier import AskModel, InjectionClassifier
from seawall.guard.events import GuardEvents
from seawall.guard.inspection import InputInspector
from seawall.guard.judge_requests import judge_asker
from seawall.guard.off_topic import OffTopicCheck
from seawall.guard.parts import GuardStores, build_guard_stores
from seawall.guard.policy import PolicyResolver
from seawall.pipeline.background import Background
from seawall.pipeline.guard import Guard
from seawall.pipeline.pipeline import Handler
from seawall.stores.redis_multiplex import MultiplexedRedis
from seawall.tokens import TokenCounter


@dataclass(slots=True)
class GuardRuntime:
    """The guard's parts; ``stage`` is None when the guard is off."""

    stores: GuardStores
    stage: Guard | None
    events: GuardEvents | None
    inspector: InputInspector | None
    embedder: LocalEmbedder | None = None

    def start(self) -> None:
        """Begin watching the revert switches."""
        if self.events is not None:
            self.events.start()

    async def aclose(self) -> None:
        """Stop the background work and the checks' thread."""
        if self.events is not None:
            await self.events.aclose()
        if self.inspector is not None:
            await self.inspector.aclose()
        if self.embedder is not None:
            await self.embedder.aclose()


def build_guard(
    settings: GuardSettings,
    master_key: str,
    engine: AsyncEngine,
    redis: MultiplexedRedis | None,
    background: Background,
    counter: TokenCounter,
    judge: Handler | None = None,
) -> GuardRuntime:
    """The guard's stores always (the admin API reads them); its stage when enabled.

    ``judge`` answers the judge's questions (the gateway's own pipeline), for profiles
    that name a ``judge_model``.
    """
    stores = build_guard_stores(settings.strikes, engine, redis)
    if not settings.enabled:
        return GuardRuntime(stores, None, None, None)
    resolver = PolicyResolver(settings, None, settings.revert)
    revertible = [route for route in settings.routes if resolver.revertible(route)]
    switch = None
    if revertible:
        policies: dict[str, RevertPolicy] = {route: settings.revert for route in revertible}
        switch = revert_switch(policies, redis)
        resolver = PolicyResolver(settings, switch, settings.revert)
    profiles = settings.profiles.values()
    # One embedder for the classifier and the off-topic check, loaded on first use.
    embedder = LocalEmbedder()
    off_topic = None
    if any(profile.output.off_topic_below > 0 for profile in profiles):

        def off_topic(threshold: float) -> OffTopicCheck:
            return OffTopicCheck(embedder, threshold)

    events = GuardEvents(stores, switch, settings.revert, background, off_topic)
    classifier = None
    if any(profile.classifier for profile in profiles):

        def classifier() -> InjectionClassifier:
            return InjectionClassifier(embedder)

    ask = None
    if judge is not None and any(profile.judge_model for profile in profiles):
        answer = judge

        def ask(model: str) -> AskModel:
            return judge_asker(answer, model)

    inspector = InputInspector(counter, classifier, ask)
    # Every instance derives the same secret: a request's data boundary and canary are
    # the same wherever it lands, so its cache key is too.
    secret = hashlib.sha256(b"seawall-guard:" + master_key.encode()).digest()
    stage = Guard(resolver, inspector, stores, events, secret)
    return GuardRuntime(stores, stage, events, inspector, embedder)
