"""Authentication: the request carries a key Seawall accepts, for an endpoint it may use.

A client IP that failed authentication too often gets 429 before its key is even
looked at, so keys cannot be guessed at speed; valid keys cost one dictionary lookup.
"""

from __future__ import annotations

from typing import Protocol

from seawall.errors import AuthenticationFailed, PermissionDenied
from seawall.pipeline.context import Identity, RequestContext
from seawall.pipeline.pipeline import Handler, Reply
from seawall.tenancy.key_verifier import KeyVerifier
from seawall.tenancy.principal import Principal

# The endpoint name a key's scope uses, by wire protocol and operation.
_ENDPOINTS = {
    ("openai", "chat"): "chat.completions",
    ("openai", "embeddings"): "embeddings",
    ("anthropic", "chat"): "messages",
}
# Feedback is about answers: a key that may ask for them may rate them.
_FEEDBACK = "feedback"
_ANSWERING = frozenset({"chat.completions", "messages"})


def _allowed(endpoint: str, scope: frozenset[str]) -> bool:
    if endpoint == _FEEDBACK:
        return bool(scope & _ANSWERING)
    return endpoint in scope


class FailureLimiter(Protocol):
    """Counts failed authentications per client IP and refuses IPs that fail too often."""

    def check(self, ip: str | None) -> None:
        """Raise ``RateLimited`` if this IP is refused for now (no I/O)."""
        ...

    async def failed(self, ip: str | None) -> None:
        """Count one failure; raise ``RateLimited`` once the IP is over its limit."""
        ...


class Authenticate:
    """Verifies the key and its endpoint scope; puts the ``Principal`` on the request."""

    name = "authenticate"

    def __init__(self, verifier: KeyVerifier, failures: FailureLimiter) -> None:
        self._verifier = verifier
        self._failures = failures

    async def principal(self, identity: Identity, endpoint: str) -> Principal:
        """The verified principal, allowed on ``endpoint``; raises 401, 403 or 429."""
        self._failures.check(identity.client_ip)
        try:
            principal = await self._verifier.verify(identity.api_key)
        except AuthenticationFailed:
            await self._failures.failed(identity.client_ip)
            raise
        if principal.endpoints is not None and not _allowed(endpoint, principal.endpoints):
            raise PermissionDenied(
                f"This API key ({principal.key_id}) may not call {endpoint}; it is scoped to "
                f"{', '.join(sorted(principal.endpoints))}."
            )
        return principal

    def wrap(self, call_next: Handler) -> Handler:
        """Refuse requests without a valid key before any other work."""
        principal_of = self.principal

        async def authenticate(ctx: RequestContext) -> Reply:
            endpoint = _ENDPOINTS[(ctx.protocol, ctx.operation)]
            principal = ctx.principal = await principal_of(ctx.identity, endpoint)
            if principal.user is not None:
                # A key bound to a user speaks for that user whatever the headers say.
                ctx.identity.user = principal.user
            return await call_next(ctx)

        return authenticate
