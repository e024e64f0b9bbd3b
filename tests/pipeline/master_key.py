"""Authentication for pipeline tests: the master key, and no stored keys."""

from __future__ import annotations

import time

from seawall.config.tenancy import default_tiers
from seawall.pipeline.authenticate import Authenticate
from seawall.resilience.clock import SystemClock
from seawall.tenancy.auth_failures import auth_failure_limiter
from seawall.tenancy.key_verifier import KeyVerifier
from seawall.tenancy.keys import ApiKey


class NoStoredKeys:
    """A key store with no keys in it."""

    async def find_by_secret(self, secret: str) -> ApiKey | None:
        return None


def master_key_only(master_key: str) -> Authenticate:
    """The authenticate stage accepting only ``master_key``."""
    verifier = KeyVerifier(
        master_key, NoStoredKeys(), default_tiers(), cache_seconds=5.0, wall_clock=time.time
    )
    return Authenticate(verifier, auth_failure_limiter(SystemClock(), None))
