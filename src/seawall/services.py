"""Everything a running gateway holds, built once at start-up and passed explicitly.

No module-level state: the HTTP layer receives one ``Services`` and closes it at
shutdown. Tests build their own with other settings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from seawall.config.schema import ProviderKind, Settings
from seawall.inbound.anthropic_messages import decode_messages
from seawall.inbound.openai_requests import decode_chat, decode_embeddings
from seawall.pipeline.authenticate import Authenticate
from seawall.pipeline.decode import Decode
from seawall.pipeline.execute import executor
from seawall.pipeline.pipeline import Pipeline
from seawall.pipeline.record import Record, RecordSink
from seawall.pipeline.route import ModelTable, Route
from seawall.providers.anthropic import AnthropicBackend
from seawall.providers.base import Backend
from seawall.providers.http_transport import HttpTransport
from seawall.providers.local_embedding import OnnxEmbeddingBackend
from seawall.providers.local_llama import LlamaBackend
from seawall.providers.openai_compat import OpenAIBackend
from seawall.stores.database import create_engine
from seawall.stores.record_writer import RecordWriter
from seawall.stores.redis_connection import RedisConnection
from seawall.stores.sql_records import SqlRecordStore
from seawall.tokens import TokenCounter

logger = logging.getLogger("seawall")


@dataclass(slots=True)
class Services:
    """The running gateway's parts."""

    settings: Settings
    authenticate: Authenticate
    pipeline: Pipeline
    models: ModelTable
    backends: dict[ProviderKind, Backend]
    engine: AsyncEngine
    records: SqlRecordStore
    writer: RecordWriter
    redis: RedisConnection | None

    async def aclose(self) -> None:
        """Flush records, then release upstream connections, models and pools."""
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


def build_pipeline(
    authenticate: Authenticate,
    sink: RecordSink,
    table: ModelTable,
    backends: dict[ProviderKind, Backend],
) -> Pipeline:
    """The stages, in order; later capabilities insert theirs here."""
    decode = Decode(
        {
            ("openai", "chat"): decode_chat,
            ("openai", "embeddings"): decode_embeddings,
            ("anthropic", "chat"): decode_messages,
        }
    )
    return Pipeline([authenticate, Record(sink), decode, Route(table)], executor(backends))


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
    )
    writer.start()
    redis = RedisConnection(settings.stores.redis_url) if settings.stores.redis_url else None
    counter = TokenCounter()
    backends = build_backends(counter)
    table = model_table(settings, backends)
    authenticate = Authenticate(master_key)
    pipeline = build_pipeline(authenticate, writer, table, backends)
    return Services(
        settings=settings,
        authenticate=authenticate,
        pipeline=pipeline,
        models=table,
        backends=backends,
        engine=engine,
        records=records,
        writer=writer,
        redis=redis,
    )
