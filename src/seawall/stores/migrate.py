"""Bring a database to the newest schema; safe to call on every start, from every process.

Several gateway workers start at once and all call ``upgrade``. They are serialised
before Alembic reads the current revision: on PostgreSQL by a transaction-scoped
advisory lock, on SQLite by ``BEGIN IMMEDIATE`` (the file's write lock). The migration
then runs inside that same transaction, so the second process sees the first one's
committed work and has nothing left to do.

A database at a revision this release does not know was migrated by a newer release:
after a rollback, Seawall starts on it as it is (migrations only add; see
docs/operations.md, "Upgrades and rollbacks").
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from seawall.stores.database import create_engine

logger = logging.getLogger(__name__)

# Arbitrary, but the same in every Seawall process: the key of the advisory lock.
_POSTGRES_MIGRATION_LOCK = 0x5EA3A11_00000001
# How long a starting SQLite worker waits for another one's migration.
_LOCK_WAIT_SECONDS = 120.0
# Serialises migrations inside one process (see upgrade_engine); across processes the
# database lock does it.
_IN_PROCESS = threading.Lock()
_SCRIPT_LOCATION = Path(__file__).with_name("migrations")


def alembic_config() -> Config:
    """An Alembic config pointing at the revisions shipped inside the package."""
    config = Config()
    config.set_main_option("script_location", str(_SCRIPT_LOCATION))
    return config


def head_revision() -> str:
    """The newest revision this version of Seawall knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the package ships at least one revision"
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def upgrade(url: str) -> None:
    """Migrate the database at ``url`` to head; a no-op when it is there already."""
    # Other workers may hold the migration lock for a while on a busy machine: wait for
    # them rather than fail the start (the request path keeps its short busy timeout).
    engine = create_engine(url, busy_timeout_s=_LOCK_WAIT_SECONDS)
    try:
        await upgrade_engine(engine)
    finally:
        await engine.dispose()


async def upgrade_engine(engine: AsyncEngine) -> None:
    """Migrate through an existing engine (the only way to reach ``sqlite:///:memory:``)."""
    # Alembic keeps its running migration in module globals (alembic.context, alembic.op),
    # so two migrations in one process must not overlap, whatever their event loops.
    await asyncio.to_thread(_IN_PROCESS.acquire)
    try:
        async with engine.connect() as connection:
            await _lock_for_migration(connection)
            await connection.run_sync(_upgrade_to_head)
            await connection.commit()
    finally:
        _IN_PROCESS.release()


async def _lock_for_migration(connection: AsyncConnection) -> None:
    if connection.dialect.name == "postgresql":
        # Released by the commit (or rollback) that ends the migration.
        await connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_MIGRATION_LOCK}
        )
    else:
        # Takes the write lock now, waiting up to the busy timeout for other workers.
        await connection.exec_driver_sql("BEGIN IMMEDIATE")


def _upgrade_to_head(connection: Connection) -> None:
    config = alembic_config()
    current = MigrationContext.configure(connection).get_current_revision()
    if current is not None and not _known(config, current):
        # A newer release migrated this database and this one was rolled back to. Its
        # migrations only add (docs/operations.md), so this release runs on that schema.
        logger.warning(
            "the database schema is at revision %s, newer than this Seawall's %s (a "
            "rollback?): starting on it without migrating",
            current,
            head_revision(),
        )
        return
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _known(config: Config, revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(config).get_revision(revision) is not None
    except CommandError:
        return False
