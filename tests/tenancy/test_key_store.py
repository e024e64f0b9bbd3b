"""Keys in SQL: stored only as hashes, revoked, rotated and expired as an operator expects."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from seawall.stores.database import create_engine
from seawall.stores.tables import api_keys
from seawall.tenancy.key_store import KeyNotFound, SqlKeyStore
from seawall.tenancy.keys import KEY_SCHEME, KeyRequest, hash_secret


class WallClock:
    """Unix seconds that tests move by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def wall() -> WallClock:
    return WallClock()


@pytest.fixture
async def keys(migrated_url: str, wall: WallClock) -> AsyncIterator[SqlKeyStore]:
    engine = create_engine(migrated_url)
    yield SqlKeyStore(engine, wall)
    await engine.dispose()


async def test_the_database_never_holds_the_plaintext_key(
    keys: SqlKeyStore, migrated_url: str
) -> None:
    issued = await keys.create_key(KeyRequest(tenant="acme", name="ci", tier="verified"))

    assert issued.secret.startswith(KEY_SCHEME)
    engine = create_engine(migrated_url)
    async with engine.connect() as connection:
        row = (await connection.execute(select(api_keys))).mappings().one()
    await engine.dispose()
    stored = " ".join(str(value) for value in row.values())
    assert issued.secret not in stored
    assert issued.secret[len(issued.key.prefix) :] not in stored
    assert row["secret_hash"] == hash_secret(issued.secret)
    assert issued.secret.startswith(row["prefix"])


async def test_a_key_is_found_by_its_secret_with_its_grants(keys: SqlKeyStore) -> None:
    issued = await keys.create_key(
        KeyRequest(
            tenant="acme",
            name="support bot",
            tier="guest",
            user="alice",
            models=("gpt-4o-mini",),
            endpoints=("chat.completions",),
            rpm=10,
            tpm=1000,
        )
    )

    found = await keys.find_by_secret(issued.secret)

    assert found == issued.key
    assert found is not None and found.models == ("gpt-4o-mini",) and found.user == "alice"
    assert await keys.find_by_secret(issued.secret + "x") is None
    assert [t["tenant_id"] for t in await keys.list_tenants()] == ["acme"]


async def test_revoking_keeps_the_row_and_marks_it_unusable(
    keys: SqlKeyStore, wall: WallClock
) -> None:
    issued = await keys.create_key(KeyRequest(tenant="acme", name="old", tier="verified"))

    revoked = await keys.revoke(issued.key.key_id)

    assert revoked.state(wall()) == "revoked"
    stored = await keys.find_by_secret(issued.secret)
    assert stored is not None and not stored.usable_at(wall())
    assert [k.key_id for k in await keys.list_keys("acme")] == [issued.key.key_id]


async def test_rotation_gives_a_new_secret_and_the_old_one_a_grace_period(
    keys: SqlKeyStore, wall: WallClock
) -> None:
    old = await keys.create_key(KeyRequest(tenant="acme", name="app", tier="verified", rpm=5))

    new = await keys.rotate(old.key.key_id, grace_seconds=600)

    assert new.secret != old.secret and new.key.rpm == 5 and new.key.name == "app"
    previous = await keys.get(old.key.key_id)
    assert previous.replaced_by == new.key.key_id
    assert previous.usable_at(wall())
    wall.now += 601
    assert not previous.usable_at(wall()) and previous.state(wall()) == "expired"
    assert (await keys.get(new.key.key_id)).usable_at(wall())


async def test_unknown_ids_and_bad_tenants_are_refused(keys: SqlKeyStore) -> None:
    with pytest.raises(KeyNotFound):
        await keys.get("key_missing")
    with pytest.raises(ValueError, match="not a valid id"):
        await keys.create_key(KeyRequest(tenant="no spaces please", name="x", tier="verified"))


async def test_expired_keys_are_not_usable(keys: SqlKeyStore, wall: WallClock) -> None:
    issued = await keys.create_key(
        KeyRequest(tenant="acme", name="temp", tier="verified", expires_at=wall() + 60)
    )
    assert issued.key.usable_at(wall())
    wall.now += 60
    assert issued.key.state(wall()) == "expired"
