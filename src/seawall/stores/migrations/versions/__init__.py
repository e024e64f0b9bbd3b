"""Alembic revisions, applied in order by ``seawall.stores.migrate.upgrade``."""
