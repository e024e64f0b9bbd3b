"""Authentication: the request carries a key Seawall accepts."""

from __future__ import annotations

import hmac

from seawall.errors import AuthenticationFailed
from seawall.pipeline.context import Identity, RequestContext
from seawall.pipeline.pipeline import Handler, Reply


class Authenticate:
    """Accepts the master key; full key management arrives with tenants."""

    name = "authenticate"

    def __init__(self, master_key: str) -> None:
        self._master_key = master_key.encode()

    def check(self, identity: Identity) -> None:
        """Raise ``AuthenticationFailed`` unless the identity carries a valid key."""
        presented = identity.api_key
        if not presented:
            raise AuthenticationFailed(
                "You didn't provide an API key. Send your Seawall key in the "
                "Authorization header (Authorization: Bearer KEY) or in x-api-key."
            )
        if not hmac.compare_digest(presented.encode(), self._master_key):
            raise AuthenticationFailed(
                f"Incorrect API key provided: {_redact(presented)}. Use a key issued by "
                "this Seawall (the master key is printed at first start)."
            )

    def wrap(self, call_next: Handler) -> Handler:
        """Refuse requests without a valid key before any other work."""
        check = self.check

        async def authenticate(ctx: RequestContext) -> Reply:
            check(ctx.identity)
            return await call_next(ctx)

        return authenticate


def _redact(key: str) -> str:
    if len(key) <= 8:
        return "*" * len(key)
    return f"{key[:3]}{'*' * 8}{key[-4:]}"
