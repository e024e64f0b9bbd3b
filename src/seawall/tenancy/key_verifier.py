"""Key verification on the hot path: one dictionary lookup for a key seen recently.

A key's stored row is kept for ``cache_seconds`` after it was read, so a revocation
or a rotation reaches every instance within that time. Unknown keys are remembered
too (a client retrying a bad key must not cost a query each time), in a bounded
table. Concurrent first uses of one key share a single query.

Failure mode: **fails closed** for keys it has never seen: while the database is
unreachable they get 503 with Retry-After. Keys verified before the outage keep
working on their last known row (expiry is still checked against the clock), so an
outage of the key store does not take down traffic that was flowing.
"""

from __future__ import annotations

import asyncio
import hmac
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from seawall.config.tenancy import Tier
from seawall.errors import AuthenticationFailed, ServiceUnavailable
from seawall.tenancy.keys import ApiKey, hash_secret
from seawall.tenancy.principal import DEFAULT_TENANT, Principal

MASTER_KEY_ID = "master"
# Remembered unknown keys; past this, the oldest are forgotten first.
_MAX_UNKNOWN = 10_000
_RETRY_AFTER_SECONDS = 2.0


class KeyLookup(Protocol):
    """Where stored keys are read from (``SqlKeyStore``)."""

    async def find_by_secret(self, secret: str) -> ApiKey | None:
        """The stored key whose secret this is, or None."""
        ...


class KeyVerifier:
    """Turns a presented key into a ``Principal`` or an ``AuthenticationFailed``."""

    def __init__(
        self,
        master_key: str,
        lookup: KeyLookup,
        tiers: dict[str, Tier],
        *,
        cache_seconds: float,
        wall_clock: Callable[[], float],
    ) -> None:
        self._master = master_key.encode()
        self._master_principal = Principal(
            key_id=MASTER_KEY_ID, tenant_id=DEFAULT_TENANT, tier="admin", admin=True
        )
        self._lookup = lookup
        self._tiers = tiers
        self._ttl = cache_seconds
        self._now = wall_clock
        # hash -> (principal-or-None, the key row, when it was read)
        self._known: dict[str, tuple[ApiKey, Principal, float]] = {}
        self._unknown: OrderedDict[str, float] = OrderedDict()
        self._pending: dict[str, asyncio.Future[ApiKey | None]] = {}

    async def verify(self, presented: str | None) -> Principal:
        """The principal of a valid key; raises ``AuthenticationFailed`` otherwise."""
        if not presented:
            raise AuthenticationFailed(
                "You didn't provide an API key. Send your Seawall key in the "
                "Authorization header (Authorization: Bearer KEY) or in x-api-key."
            )
        if hmac.compare_digest(presented.encode(), self._master):
            return self._master_principal
        digest = hash_secret(presented)
        now = self._now()
        known = self._known.get(digest)
        if known is not None and now - known[2] < self._ttl:
            return self._usable(known[0], known[1], now)
        unknown_since = self._unknown.get(digest)
        if unknown_since is not None and now - unknown_since < self._ttl:
            raise _incorrect(presented)
        try:
            key = await self._read(digest, presented)
        except Exception as exc:
            if known is not None:
                # The store is down: keep serving a key it vouched for recently.
                return self._usable(known[0], known[1], now)
            raise ServiceUnavailable(
                "API keys cannot be verified right now (the key store is unreachable); "
                "retry shortly.",
                retry_after=_RETRY_AFTER_SECONDS,
            ) from exc
        if key is None:
            self._known.pop(digest, None)
            self._remember_unknown(digest, now)
            raise _incorrect(presented)
        principal = self.principal_of(key)
        self._known[digest] = (key, principal, now)
        return self._usable(key, principal, now)

    def principal_of(self, key: ApiKey) -> Principal:
        """What a stored key grants: its own values, else its tier's."""
        tier = self._tiers.get(key.tier)
        models = key.models if key.models is not None else (tier.models if tier else None)
        endpoints = (
            key.endpoints if key.endpoints is not None else (tier.endpoints if tier else None)
        )
        return Principal(
            key_id=key.key_id,
            tenant_id=key.tenant_id,
            tier=key.tier,
            user=key.user,
            models=None if models is None else frozenset(models),
            endpoints=None if endpoints is None else frozenset(endpoints),
            rpm=key.rpm if key.rpm is not None else (tier.rpm if tier else None),
            tpm=key.tpm if key.tpm is not None else (tier.tpm if tier else None),
            admin=tier.admin if tier else False,
        )

    async def _read(self, digest: str, presented: str) -> ApiKey | None:
        pending = self._pending.get(digest)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[ApiKey | None] = asyncio.get_running_loop().create_future()
        self._pending[digest] = future
        try:
            key = await self._lookup.find_by_secret(presented)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        else:
            future.set_result(key)
            return key
        finally:
            del self._pending[digest]

    def _usable(self, key: ApiKey, principal: Principal, now: float) -> Principal:
        if key.usable_at(now):
            return principal
        raise AuthenticationFailed(
            f"The API key {key.prefix}… ({key.key_id}) is {key.state(now)}. "
            "Ask your Seawall operator for a new key."
            + (f" It was replaced by {key.replaced_by}." if key.replaced_by else "")
        )

    def _remember_unknown(self, digest: str, now: float) -> None:
        self._unknown[digest] = now
        self._unknown.move_to_end(digest)
        while len(self._unknown) > _MAX_UNKNOWN:
            self._unknown.popitem(last=False)


def _incorrect(presented: str) -> AuthenticationFailed:
    return AuthenticationFailed(
        f"Incorrect API key provided: {_redact(presented)}. Use a key issued by this "
        "Seawall (`seawall keys create`, or the master key printed at first start)."
    )


def _redact(key: str) -> str:
    if len(key) <= 8:
        return "*" * len(key)
    return f"{key[:3]}{'*' * 8}{key[-4:]}"
