"""Key verification: cached, revocations reach it in time, outages keep known keys working."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from seawall.config.tenancy import default_tiers
from seawall.errors import AuthenticationFailed, ServiceUnavailable
from seawall.tenancy.key_verifier import MASTER_KEY_ID, KeyVerifier
from seawall.tenancy.keys import ApiKey, hash_secret

MASTER = "sk-master-" + "m" * 20
SECRET = "sk-sw-" + "s" * 43


class Keys:
    """Stored keys by secret; counts lookups and can be switched off like a lost database."""

    def __init__(self) -> None:
        self.rows: dict[str, ApiKey] = {}
        self.lookups = 0
        self.down = False
        self.delay = 0.0

    async def find_by_secret(self, secret: str) -> ApiKey | None:
        self.lookups += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down:
            raise ConnectionRefusedError("database unreachable")
        return self.rows.get(hash_secret(secret))


class Wall:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def stored(**changes: object) -> ApiKey:
    key = ApiKey(
        key_id="key_1", prefix=SECRET[:12], name="app", tenant_id="acme", tier="guest",
        created_at=0.0,
    )  # fmt: skip
    return replace(key, **changes)  # type: ignore[arg-type]


@pytest.fixture
def keys() -> Keys:
    found = Keys()
    found.rows[hash_secret(SECRET)] = stored()
    return found


@pytest.fixture
def wall() -> Wall:
    return Wall()


@pytest.fixture
def verifier(keys: Keys, wall: Wall) -> KeyVerifier:
    return KeyVerifier(MASTER, keys, default_tiers(), cache_seconds=5.0, wall_clock=wall)


async def test_the_master_key_is_an_admin_of_the_default_tenant(verifier: KeyVerifier) -> None:
    principal = await verifier.verify(MASTER)
    assert principal.admin and principal.key_id == MASTER_KEY_ID


async def test_a_key_gets_its_tiers_defaults_unless_it_has_its_own(
    verifier: KeyVerifier, keys: Keys
) -> None:
    principal = await verifier.verify(SECRET)
    guest = default_tiers()["guest"]
    assert (principal.tenant_id, principal.tier, principal.rpm) == ("acme", "guest", guest.rpm)
    assert principal.endpoints == frozenset(guest.endpoints or ())
    assert not principal.admin

    keys.rows[hash_secret(SECRET)] = stored(rpm=999, endpoints=("embeddings",))
    fresh = KeyVerifier(MASTER, keys, default_tiers(), cache_seconds=5.0, wall_clock=Wall())
    own = await fresh.verify(SECRET)
    assert own.rpm == 999 and own.endpoints == frozenset({"embeddings"})


async def test_a_known_key_costs_no_lookup_until_the_cache_time_passes(
    verifier: KeyVerifier, keys: Keys, wall: Wall
) -> None:
    for _ in range(5):
        await verifier.verify(SECRET)
    assert keys.lookups == 1
    wall.now += 5.0
    await verifier.verify(SECRET)
    assert keys.lookups == 2


async def test_a_revocation_takes_effect_within_the_cache_time(
    verifier: KeyVerifier, keys: Keys, wall: Wall
) -> None:
    await verifier.verify(SECRET)
    keys.rows[hash_secret(SECRET)] = stored(revoked_at=wall.now)
    wall.now += 5.0
    with pytest.raises(AuthenticationFailed, match="revoked"):
        await verifier.verify(SECRET)


async def test_expiry_is_checked_on_every_request_even_from_the_cache(
    verifier: KeyVerifier, keys: Keys, wall: Wall
) -> None:
    keys.rows[hash_secret(SECRET)] = stored(expires_at=wall.now + 1)
    await verifier.verify(SECRET)
    wall.now += 1
    with pytest.raises(AuthenticationFailed, match="expired"):
        await verifier.verify(SECRET)


async def test_wrong_keys_are_refused_and_remembered(verifier: KeyVerifier, keys: Keys) -> None:
    for _ in range(3):
        with pytest.raises(AuthenticationFailed, match="Incorrect API key"):
            await verifier.verify("sk-sw-wrong-key-wrong-key")
    assert keys.lookups == 1
    with pytest.raises(AuthenticationFailed, match="didn't provide an API key"):
        await verifier.verify(None)


async def test_concurrent_first_uses_share_one_lookup(verifier: KeyVerifier, keys: Keys) -> None:
    keys.delay = 0.01
    principals = await asyncio.gather(*(verifier.verify(SECRET) for _ in range(20)))
    assert {p.key_id for p in principals} == {"key_1"}
    assert keys.lookups == 1


async def test_a_database_outage_fails_closed_for_new_keys_and_open_for_known_ones(
    verifier: KeyVerifier, keys: Keys, wall: Wall
) -> None:
    await verifier.verify(SECRET)
    keys.down = True
    wall.now += 60

    assert (await verifier.verify(SECRET)).key_id == "key_1"
    with pytest.raises(ServiceUnavailable) as refused:
        await verifier.verify("sk-sw-never-seen-before-key")
    assert refused.value.headers()["retry-after"] == "2"
