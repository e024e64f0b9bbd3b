"""Alembic environment for Seawall's schema.

``seawall.stores.migrate`` hands over a connection it has already locked (see there);
the alembic CLI, for developers, passes ``-x url=...`` instead.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from seawall.stores.database import create_engine
from seawall.stores.tables import metadata


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_url(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_configure_and_run)
            await connection.commit()
    finally:
        await engine.dispose()


def _url_from_command_line() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    url = url or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("pass the database with: alembic -x url=sqlite:///path.db ...")
    return url


def _run() -> None:
    handed_over = context.config.attributes.get("connection")
    if handed_over is not None:
        _configure_and_run(handed_over)
    elif context.is_offline_mode():
        context.configure(
            url=_url_from_command_line(), target_metadata=metadata, literal_binds=True
        )
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(_run_with_url(_url_from_command_line()))


_run()
