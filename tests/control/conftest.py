"""An engine on each kind of database (tests/databases.py), and the sample ledger in it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from seawall.stores.database import create_engine
from seawall.stores.feedback import SqlFeedbackStore
from seawall.stores.sql_records import SqlRecordStore
from tests.control.sample_ledger import sample_feedback, sample_ledger


@pytest.fixture
async def engine(migrated_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty, migrated database."""
    engine = create_engine(migrated_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def ledger(engine: AsyncEngine) -> AsyncEngine:
    """The engine, with the sample ledger (and feedback) written the way the gateway does."""
    await SqlRecordStore(engine).write_batch(sample_ledger())
    feedback = SqlFeedbackStore(engine)
    for verdict in sample_feedback():
        await feedback.put(verdict)
    return engine
