"""A guard SQL store's engine behind a TCP proxy to the real PostgreSQL, to cut and restore."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from seawall.stores.database import create_engine
from seawall.stores.migrate import upgrade
from tests.databases import empty_postgres
from tests.stores.tcp_proxy import TcpProxy


@dataclass
class CutDatabase:
    """An engine whose network path to PostgreSQL a test can cut and restore."""

    engine: AsyncEngine
    proxy: TcpProxy

    async def cut(self) -> None:
        """Reset every connection and refuse new ones."""
        await self.proxy.cut()

    async def restore(self) -> None:
        """Let connections through again."""
        await self.proxy.start()


@pytest.fixture
async def cut_database(postgres_url: str) -> AsyncIterator[CutDatabase]:
    """The private PostgreSQL database, emptied and migrated, reached through a proxy."""
    await empty_postgres(postgres_url)
    await upgrade(postgres_url)
    proxy = TcpProxy(target_port=make_url(postgres_url).port or 5432)
    await proxy.start()
    via_proxy = make_url(postgres_url).set(port=proxy.port)
    engine = create_engine(via_proxy.render_as_string(hide_password=False), connect_timeout_s=2.0)
    try:
        yield CutDatabase(engine, proxy)
    finally:
        await engine.dispose()
        await proxy.cut()
