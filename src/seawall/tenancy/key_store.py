"""Tenants and API keys in SQL (SQLite embedded, PostgreSQL in production).

The database holds a key's SHA-256 and its visible prefix, never the key. Creating a
key for a tenant that does not exist yet creates the tenant. Revoking and rotating
keep the row (records and budgets still name it); a rotated key stays valid for a
grace period so clients can switch without an outage.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from seawall.stores.tables import api_keys, tenants
from seawall.tenancy.keys import (
    ApiKey,
    IssuedKey,
    KeyRequest,
    hash_secret,
    new_key_id,
    new_secret,
    visible_prefix,
)

_TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class KeyNotFound(LookupError):
    """No key has that id."""


def valid_tenant_id(tenant_id: str) -> bool:
    """Tenant ids are short slugs: letters, digits, '.', '_' and '-'."""
    return _TENANT_ID.match(tenant_id) is not None


class SqlKeyStore:
    """Tenants and keys on an async SQLAlchemy engine; ``wall_clock`` gives unix seconds."""

    def __init__(self, engine: AsyncEngine, wall_clock: Callable[[], float]) -> None:
        self._engine = engine
        self._now = wall_clock

    async def create_key(self, request: KeyRequest) -> IssuedKey:
        """Store a new key (and its tenant if new); the secret is returned, never kept."""
        if not valid_tenant_id(request.tenant):
            raise ValueError(
                f"tenant {request.tenant!r} is not a valid id: use letters, digits, '.', '_' "
                "and '-', at most 64 characters"
            )
        secret = new_secret()
        key = ApiKey(
            key_id=new_key_id(),
            prefix=visible_prefix(secret),
            name=request.name,
            tenant_id=request.tenant,
            tier=request.tier,
            created_at=self._now(),
            user=request.user,
            models=request.models,
            endpoints=request.endpoints,
            rpm=request.rpm,
            tpm=request.tpm,
            expires_at=request.expires_at,
        )
        async with self._engine.begin() as connection:
            await self._ensure_tenant(connection, request.tenant)
            await connection.execute(insert(api_keys).values(_row(key, hash_secret(secret))))
        return IssuedKey(key, secret)

    async def find_by_secret(self, secret: str) -> ApiKey | None:
        """The stored key whose secret this is, usable or not."""
        query = select(api_keys).where(api_keys.c.secret_hash == hash_secret(secret))
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).mappings().first()
        return None if row is None else _key(row)

    async def get(self, key_id: str) -> ApiKey:
        """One key by id; raises ``KeyNotFound``."""
        query = select(api_keys).where(api_keys.c.key_id == key_id)
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).mappings().first()
        if row is None:
            raise KeyNotFound(key_id)
        return _key(row)

    async def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        """Every key, or a tenant's, oldest first."""
        query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.key_id)
        if tenant is not None:
            query = query.where(api_keys.c.tenant_id == tenant)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [_key(row) for row in rows]

    async def revoke(self, key_id: str) -> ApiKey:
        """Stop a key from working (within the verifier's cache time on every instance)."""
        key = await self.get(key_id)
        if key.revoked_at is not None:
            return key
        now = self._now()
        async with self._engine.begin() as connection:
            await connection.execute(
                update(api_keys).where(api_keys.c.key_id == key_id).values(revoked_at=now)
            )
        return replace(key, revoked_at=now)

    async def rotate(self, key_id: str, grace_seconds: float) -> IssuedKey:
        """A new key with the same grants; the old one expires after ``grace_seconds``."""
        old = await self.get(key_id)
        now = self._now()
        if not old.usable_at(now):
            raise ValueError(f"key {key_id} is {old.state(now)}; only an active key rotates")
        secret = new_secret()
        new = replace(
            old,
            key_id=new_key_id(),
            prefix=visible_prefix(secret),
            created_at=now,
            revoked_at=None,
            replaced_by=None,
        )
        old_expiry = now + max(0.0, grace_seconds)
        if old.expires_at is not None:
            old_expiry = min(old_expiry, old.expires_at)
        async with self._engine.begin() as connection:
            await connection.execute(insert(api_keys).values(_row(new, hash_secret(secret))))
            await connection.execute(
                update(api_keys)
                .where(api_keys.c.key_id == key_id)
                .values(expires_at=old_expiry, replaced_by=new.key_id)
            )
        return IssuedKey(new, secret)

    async def list_tenants(self) -> list[dict[str, Any]]:
        """Every tenant: id, name and creation time."""
        query = select(tenants).order_by(tenants.c.tenant_id)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [dict(row) for row in rows]

    async def create_tenant(self, tenant_id: str, name: str | None = None) -> None:
        """Create a tenant (no error if it exists)."""
        if not valid_tenant_id(tenant_id):
            raise ValueError(f"tenant {tenant_id!r} is not a valid id")
        async with self._engine.begin() as connection:
            await self._ensure_tenant(connection, tenant_id, name)

    async def _ensure_tenant(
        self, connection: AsyncConnection, tenant_id: str, name: str | None = None
    ) -> None:
        exists = await connection.execute(
            select(tenants.c.tenant_id).where(tenants.c.tenant_id == tenant_id)
        )
        if exists.first() is not None:
            return
        try:
            async with connection.begin_nested():
                await connection.execute(
                    insert(tenants).values(
                        tenant_id=tenant_id, name=name or tenant_id, created_at=self._now()
                    )
                )
        except IntegrityError:
            pass  # created meanwhile by another process


def _row(key: ApiKey, secret_hash: str) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "prefix": key.prefix,
        "secret_hash": secret_hash,
        "name": key.name,
        "tenant_id": key.tenant_id,
        "user": key.user,
        "tier": key.tier,
        "models": _json_list(key.models),
        "endpoints": _json_list(key.endpoints),
        "rpm": key.rpm,
        "tpm": key.tpm,
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        "replaced_by": key.replaced_by,
    }


def _json_list(values: tuple[str, ...] | None) -> str | None:
    return None if values is None else orjson.dumps(list(values)).decode()


def _tuple(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(orjson.loads(text))


def _key(row: Any) -> ApiKey:
    return ApiKey(
        key_id=row["key_id"],
        prefix=row["prefix"],
        name=row["name"],
        tenant_id=row["tenant_id"],
        tier=row["tier"],
        created_at=row["created_at"],
        user=row["user"],
        models=_tuple(row["models"]),
        endpoints=_tuple(row["endpoints"]),
        rpm=row["rpm"],
        tpm=row["tpm"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        replaced_by=row["replaced_by"],
    )
