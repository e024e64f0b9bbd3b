"""Who sent a request, read from its headers in one place."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.requests import Request

from seawall.pipeline.context import Identity
from seawall.tenancy.client_ip import ClientAddress

_MAX_HEADER_VALUE = 200


def _short(value: str | None) -> str | None:
    return value[:_MAX_HEADER_VALUE] if value else None


def request_identity(request: Request, client_address: ClientAddress) -> Identity:
    """The identity of a request, with its client IP resolved behind trusted proxies."""
    headers = request.headers
    peer = request.client.host if request.client is not None else None
    return read_identity(headers, client_address.resolve(peer, headers.get("x-forwarded-for")))


def read_identity(headers: Headers, client_ip: str | None = None) -> Identity:
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
