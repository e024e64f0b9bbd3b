"""Who sent a request, read from its headers in one place."""

from __future__ import annotations

from starlette.requests import Request

from seawall.http.incoming import HeaderLookup
from seawall.pipeline.context import Identity
from seawall.tenancy.client_ip import ClientAddress

_MAX_HEADER_VALUE = 200


def _short(value: str | None) -> str | None:
    return value[:_MAX_HEADER_VALUE] if value else None


def request_identity(
    headers: HeaderLookup, peer: str | None, client_address: ClientAddress
) -> Identity:
    """The identity of a request from ``peer``, its client IP resolved behind trusted proxies."""
    return read_identity(headers, client_address.resolve(peer, headers.get("x-forwarded-for")))


def read_identity(headers: HeaderLookup, client_ip: str | None = None) -> Identity:
    """Key (Bearer or x-api-key), user, session, feature and the client's correlation id."""
    api_key = headers.get("x-api-key")
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            api_key = token.strip()
    return Identity(
        api_key=api_key,
        user=_short(headers.get("x-seawall-user")),
        session_id=_short(headers.get("x-seawall-session-id")),
        feature=_short(headers.get("x-seawall-feature")),
        correlation_id=_short(headers.get("x-request-id")),
        client_ip=client_ip,
    )


def identity_of(request: Request, client_address: ClientAddress) -> Identity:
    """The identity of a request Starlette routed (the admin API, model listing)."""
    peer = request.client.host if request.client is not None else None
    return request_identity(request.headers, peer, client_address)
