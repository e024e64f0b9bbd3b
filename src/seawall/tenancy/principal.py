"""Who a request acts for once its key is verified."""

from __future__ import annotations

from dataclasses import dataclass

# The tenant requests with the master key (and keys created without one) belong to.
DEFAULT_TENANT = "default"


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified key: its tenant, tier and what it may use.

    ``models`` and ``endpoints`` of None mean "whatever the tier allows"; ``rpm`` and
    ``tpm`` of None mean "the tier's limit".
    """

    key_id: str
    tenant_id: str
    tier: str
    user: str | None = None
    models: frozenset[str] | None = None
    endpoints: frozenset[str] | None = None
    rpm: int | None = None
    tpm: int | None = None
    admin: bool = False
