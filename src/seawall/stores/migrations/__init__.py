"""Alembic environment for Seawall's SQL schema; run it through ``seawall.stores.migrate``."""
