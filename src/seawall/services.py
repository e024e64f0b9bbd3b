"""Everything a running gateway holds, built once at start-up and passed explicitly.

No module-level state: the HTTP layer receives one ``Services`` and closes it at
shutdown. Tests build their own with other settings.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from seawall.cache.invalidation import SqlInvalidations
from seawall.cache.parts import build_cache
from seawall.config.schema import ProviderKind, Settings
from seawall.guard.parts import GuardStores
from seawall.guard.runtime import GuardRuntime, build_guard
from seawall.inbound.anthropic_messages import decode_messages
from seawall.inbound.openai_requests import decode_chat, decode_embeddings
from seawall.monitoring.answer import Observer
from seawall.monitoring.metrics import FeedbackMetrics
from seawall.monitoring.parts import Monitoring, build_monitoring
from seawall.pipeline.admit import Admit
from seawall.pipeline.authenticate import Authenticate
from seawall.pipeline.authorize import Authorize
from seawall.pipeline.budget import Budget
from seawall.pipeline.cache import CacheFieldRemover, ResponseCache
from seawall.pipeline.candidates import CandidatePlanner
from seawall.pipeline.decode import Decode
from seawall.pipeline.execute import Executor, Resilience
from seawall.pipeline.guard import Guard
from seawall.pipeline.limit import ClientRateLimit
from seawall.pipeline.pipeline import Pipeline, Stage
from seawall.pipeline.quotas import Quotas
from seawall.pipeline.record import Record, RecordSink, Stopping
from seawall.pipeline.rejections import RejectionLog
from seawall.pipeline.route import ModelTable, Route
from seawall.providers.anthropic import AnthropicBackend
from seawall.providers.base import Backend
from seawall.providers.http_transport import HttpTransport
from seawall.providers.local_embedding import OnnxEmbeddingBackend
from seawall.providers.local_llama import LlamaBackend
from seawall.providers.openai_compat import OpenAIBackend
from seawall.resilience import shared_state
from seawall.resilience.admission import Admission
from seawall.resilience.balancer import Balancer
from seawall.resilience.clock import Clock, SystemClock
from seawall.stores.database import create_engine
from seawall.stores.feedback import SqlFeedbackStore
from seawall.stores.record_spool import RecordSpool
from seawall.stores.record_writer import RecordWriter
from seawall.stores.redis_connection import RedisConnection
from seawall.stores.sql_records import SqlRecordStore
from seawall.tenancy.costs import PriceBook
from seawall.tenancy.parts import Tenancy, build_tenancy
from seawall.tokens import TokenCounter

logger = logging.getLogger("seawall")


@dataclass(slots=True)
class Services:
    """The running gateway's parts."""

    settings: Settings
    tenancy: Tenancy
    pipeline: Pipeline
    models: ModelTable
    backends: dict[ProviderKind, Backend]
    resilience: Resilience
    admission: Admission
    engine: AsyncEngine
    records: SqlRecordStore
    writer: RecordWriter
    redis: RedisConnection | None
    # End users' feedback on answers (POST /v1/feedback), kept and exported as a metric.
    feedback: SqlFeedbackStore
    feedback_metrics: FeedbackMetrics
    # The guard's per-user strikes, detection log and review queue.
    guard: GuardStores
    # The guard's stage and background work (stage None: the guard is off).
    guard_runtime: GuardRuntime
    # The response cache and its invalidation table (None: caching is off).
    cache: ResponseCache | None = None
    invalidations: SqlInvalidations | None = None
    # Routes, answers and records the requests ``seawall cache warm`` replays.
    warm: Pipeline | None = None
    # Observers of finished requests, the state gauges and the golden set evaluation.
    monitoring: Monitoring | None = None
    # Set when a shutdown's grace period ends (``http.drain``); records tell cut from left.
    stopping: Stopping = field(default_factory=Stopping)

    async def aclose(self) -> None:
        """Settle budgets, flush records, then release upstream connections, models and pools."""
        if self.monitoring is not None:
            await self.monitoring.aclose()
        await self.guard_runtime.aclose()
        await self.tenancy.aclose()
        if self.cache is not None:
            await self.cache.aclose()
        await self.resilience.background.drain()
        await self.writer.aclose()
        for backend in self.backends.values():
            await backend.aclose()
        await self.records.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()


def build_backends(counter: TokenCounter) -> dict[ProviderKind, Backend]:
    """One backend per provider kind; deployments share them."""
    return {
        "openai": OpenAIBackend(HttpTransport(), counter),
        "anthropic": AnthropicBackend(HttpTransport(), counter),
        "local-llama": LlamaBackend(),
        "local-embedding": OnnxEmbeddingBackend(),
    }


def model_table(settings: Settings, backends: dict[ProviderKind, Backend]) -> ModelTable:
    """Public models with the deployments that can serve them here."""
    usable = {
        name: tuple(d for d in settings.deployments_for(model) if backends[d.provider].usable(d))
        for name, model in settings.models.items()
    }
    for name, deployments in usable.items():
        if not deployments:
            logger.warning("model %s has no usable deployment and will answer 503", name)
    return ModelTable(settings.models, usable)


def build_resilience(
    settings: Settings, counter: TokenCounter, redis: RedisConnection | None, clock: Clock
) -> Resilience:
    """Breakers, budgets and balancing; shared through Redis when one is configured."""
    client = redis.client if redis is not None else None
    return Resilience(
        settings=settings.resilience,
        clock=clock,
        breakers=shared_state.breaker_store(clock, client),
        rates=shared_state.rate_budget(clock, client),
        retry_budget=shared_state.retry_budget(clock, settings.resilience),
        balancer=Balancer(clock),
        counter=counter,
        rejections=RejectionLog(clock.now),
        report_after_answer=client is not None,
    )


def build_pipeline(
    authenticate: Authenticate,
    sink: RecordSink,
    admission: Admission,
    table: ModelTable,
    backends: dict[ProviderKind, Backend],
    resilience: Resilience,
    prices: PriceBook,
    *,
    limits: ClientRateLimit | None = None,
    budget: Budget | None = None,
    cache: ResponseCache | None = None,
    guard: Guard | None = None,
    observers: Sequence[Observer] = (),
    stopping: Stopping | None = None,
) -> Pipeline:
    """The stages, in order; later capabilities insert theirs here.

    The guard comes after routing (a route's policy needs the model) and before the
    cache (a blocked prompt never reaches it, and the prompt it shapes is the one
    cached).

    Client limits and budgets come after routing (their estimates need the model) and
    inside recording (their refusals are recorded like any failure). The cache comes
    after routing (its key names the model) and before limits and budgets (a hit
    costs nothing upstream).
    """
    decode = Decode(
        {
            ("openai", "chat"): decode_chat,
            ("openai", "embeddings"): decode_embeddings,
            ("anthropic", "chat"): decode_messages,
        }
    )
    planner = CandidatePlanner(table.models, table.usable, resilience.balancer)
    return Pipeline(
        [
            authenticate,
            Record(sink, prices, observers, stopping),
            Admit(admission, resilience.rejections),
            decode,
            Authorize(),
            Route(table),
            *([guard] if guard is not None else []),
            cache if cache is not None else CacheFieldRemover(),
            *_quota_stages(limits, budget),
        ],
        Executor(backends, planner, resilience),
    )


def build_own_pipeline(
    sink: RecordSink,
    table: ModelTable,
    backends: dict[ProviderKind, Backend],
    resilience: Resilience,
    prices: PriceBook,
    observers: Sequence[Observer] = (),
    *,
    cache: ResponseCache | None = None,
) -> Pipeline:
    """The pipeline of the gateway's own requests: cache warming replays (through
    ``cache``, which keeps their answers) and golden set evaluations (no cache).

    The requests are the gateway's own (an admin or the configuration asked for them),
    so they skip authentication, admission, limits and budgets; they are routed and
    recorded like any other, their cost on their records with their feature tag
    (``cache-warm`` under the entry's tenant, ``golden-eval``).
    """
    planner = CandidatePlanner(table.models, table.usable, resilience.balancer)
    stages: list[Stage] = [Record(sink, prices, observers), Route(table)]
    if cache is not None:
        stages.append(cache)
    return Pipeline(stages, Executor(backends, planner, resilience))


def _quota_stages(limits: ClientRateLimit | None, budget: Budget | None) -> list[Stage]:
    """Limits and budgets: one stage that checks both at once when there are both."""
    if limits is not None and budget is not None:
        return [Quotas(limits, budget)]
    return [stage for stage in (limits, budget) if stage is not None]


async def start_services(settings: Settings, master_key: str, *, migrate: bool = True) -> Services:
    """Open stores, build backends and compose the pipeline."""
    if migrate:
        # Imported here: workers started by `seawall serve` never migrate, and Alembic
        # costs about 10 MB of memory per process.
        from seawall.stores.migrate import upgrade

        await upgrade(settings.stores.database_url)
    engine = create_engine(settings.stores.database_url)
    records = SqlRecordStore(engine)
    writer = RecordWriter(
        records,
        flush_seconds=settings.stores.record_flush_seconds,
        batch_size=settings.stores.record_batch_size,
        spool=RecordSpool(settings.data_dir / "spool"),
    )
    writer.start()
    redis = RedisConnection(settings.stores.redis_url) if settings.stores.redis_url else None
    counter = TokenCounter()
    backends = build_backends(counter)
    table = model_table(settings, backends)
    clock = SystemClock()
    resilience = build_resilience(settings, counter, redis, clock)
    admission = Admission(settings.resilience.admission, clock)
    prices = PriceBook(settings.deployments)
    for name in prices.unpriced:
        logger.warning("deployment %s has no price (configured or known); it costs 0", name)
    tenancy = build_tenancy(
        settings,
        master_key,
        engine,
        redis.client if redis is not None else None,
        clock=clock,
        counter=counter,
        prices=prices,
        table=table,
        rejections=resilience.rejections,
    )
    await tenancy.start()
    cache, invalidations = None, None
    if settings.cache.enabled:
        cache, invalidations = build_cache(
            settings.cache, engine, redis.client if redis is not None else None, clock
        )
        await cache.start()
    # Every finished request is looked at (metrics, quality) on its way to the ledger.
    monitoring = build_monitoring(settings)
    observers = monitoring.observers
    own = build_own_pipeline(writer, table, backends, resilience, prices, observers).run
    guard = build_guard(
        settings.guard,
        master_key,
        engine,
        redis.client if redis is not None else None,
        resilience.background,
        counter,
        judge=own,
    )
    guard.start()
    stopping = Stopping()
    pipeline = build_pipeline(
        tenancy.authenticate,
        writer,
        admission,
        table,
        backends,
        resilience,
        prices,
        limits=tenancy.limits,
        budget=tenancy.budget,
        cache=cache,
        guard=guard.stage,
        observers=observers,
        stopping=stopping,
    )
    monitoring.start(admission, writer, resilience.breakers, own)
    return Services(
        stopping=stopping,
        monitoring=monitoring,
        settings=settings,
        tenancy=tenancy,
        pipeline=pipeline,
        models=table,
        backends=backends,
        resilience=resilience,
        admission=admission,
        engine=engine,
        records=records,
        writer=writer,
        redis=redis,
        feedback=SqlFeedbackStore(engine),
        feedback_metrics=FeedbackMetrics(settings.models),
        guard=guard.stores,
        guard_runtime=guard,
        cache=cache,
        invalidations=invalidations,
        warm=None
        if cache is None
        else build_own_pipeline(
            writer, table, backends, resilience, prices, observers, cache=cache
        ),
    )
