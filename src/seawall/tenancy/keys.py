"""API keys: how they look, how they are hashed, and what a stored key grants.

A key is ``sk-sw-`` followed by 43 URL-safe characters (256 random bits). Only its
SHA-256 is stored: a key that random cannot be guessed from its hash, and a fast
hash keeps verification to one dictionary lookup on the hot path. The first
``PREFIX_LENGTH`` characters are kept in the clear, so an operator can tell keys
apart in listings and logs.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

KEY_SCHEME = "sk-sw-"
# Visible part of a key: the scheme and six characters of the secret.
PREFIX_LENGTH = len(KEY_SCHEME) + 6


def new_secret() -> str:
    """A new plaintext key; shown once, never stored."""
    return KEY_SCHEME + secrets.token_urlsafe(32)


def new_key_id() -> str:
    """The stable, public identifier of a key (what listings, records and budgets use)."""
    return "key_" + secrets.token_hex(8)


def hash_secret(secret: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(secret.encode()).hexdigest()


def visible_prefix(secret: str) -> str:
    """The part of a key shown in listings."""
    return secret[:PREFIX_LENGTH]


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key, without its secret.

    ``models`` and ``endpoints`` of None mean "whatever the tier allows"; ``rpm`` and
    ``tpm`` of None mean "the tier's limit". Times are unix seconds.
    """

    key_id: str
    prefix: str
    name: str
    tenant_id: str
    tier: str
    created_at: float
    user: str | None = None
    models: tuple[str, ...] | None = None
    endpoints: tuple[str, ...] | None = None
    rpm: int | None = None
    tpm: int | None = None
    expires_at: float | None = None
    revoked_at: float | None = None
    replaced_by: str | None = None

    def usable_at(self, now: float) -> bool:
        """Neither revoked nor expired at ``now``."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.expires_at is None or now < self.expires_at

    def state(self, now: float) -> str:
        """ "active", "revoked" or "expired", for listings."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key just created: the only time its secret is known."""

    key: ApiKey
    secret: str


@dataclass(frozen=True, slots=True)
class KeyRequest:
    """What to create a key with (the CLI and the admin API build one)."""

    tenant: str
    name: str
    tier: str
    user: str | None = None
    models: tuple[str, ...] | None = None
    endpoints: tuple[str, ...] | None = None
    rpm: int | None = None
    tpm: int | None = None
    expires_at: float | None = None
