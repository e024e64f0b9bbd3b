"""The admin API's common ground (an admin key, JSON in and out), tenants and keys.

Budgets are in ``admin_budgets``, usage reports in ``admin_usage``.

Every call needs an admin key: the master key or a key of a tier with ``admin: true``.
Errors are OpenAI-shaped, like the serving API's.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from seawall.control.key_requests import key_json, key_request, parse_duration
from seawall.errors import InvalidRequest, NotFound, PermissionDenied, SeawallError
from seawall.http.body import read_body
from seawall.http.identity import identity_of
from seawall.http.request_id import SCOPE_KEY
from seawall.http.responses import as_seawall_error, json_response, openai_error
from seawall.inbound.json_body import parse_object
from seawall.services import Services
from seawall.tenancy.key_store import KeyNotFound, valid_tenant_id

ServicesSource = Callable[[], Services]
AdminHandler = Callable[[Request, Services], Awaitable[Any]]
# A rotated key keeps working this long unless the request says otherwise.
DEFAULT_ROTATION_GRACE_SECONDS = 3600.0


def admin_endpoint(
    services: ServicesSource, handler: AdminHandler, status: int = 200
) -> Callable[[Request], Awaitable[Response]]:
    """An ASGI endpoint that checks for an admin key, runs ``handler`` and renders JSON."""

    async def endpoint(request: Request) -> Response:
        try:
            current = services()
            identity = identity_of(request, current.tenancy.client_address)
            principal = await current.tenancy.authenticate.principal(identity, "admin")
            if not principal.admin:
                raise PermissionDenied(
                    f"The admin API needs an admin key; {principal.key_id} is a "
                    f"{principal.tier!r} key."
                )
            result = await handler(request, current)
        except Exception as exc:
            return openai_error(as_seawall_error(exc, request.scope[SCOPE_KEY]))
        if isinstance(result, Response):
            return result
        return json_response(result, status)

    return endpoint


async def json_body(request: Request, services: Services) -> dict[str, Any]:
    """The request's JSON object (an empty body reads as {})."""
    raw = await read_body(request.headers, request.receive, services.settings.server.max_body_bytes)
    return parse_object(raw) if raw.strip() else {}


async def list_tenants(request: Request, services: Services) -> Any:
    """GET /admin/tenants."""
    return {"object": "list", "data": await services.tenancy.keys.list_tenants()}


async def create_tenant(request: Request, services: Services) -> Any:
    """POST /admin/tenants {"id": ..., "name": ...}."""
    body = await json_body(request, services)
    tenant_id = body.get("id")
    if not isinstance(tenant_id, str) or not valid_tenant_id(tenant_id):
        raise InvalidRequest(
            "id must be a tenant id: letters, digits, '.', '_' and '-', at most 64 characters.",
            param="id",
        )
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise InvalidRequest("name must be a string.", param="name")
    await services.tenancy.keys.create_tenant(tenant_id, name)
    return {"id": tenant_id, "name": name or tenant_id}


async def list_keys(request: Request, services: Services) -> Any:
    """GET /admin/keys[?tenant=ID]."""
    keys = await services.tenancy.keys.list_keys(request.query_params.get("tenant"))
    now = time.time()
    return {"object": "list", "data": [key_json(key, now) for key in keys]}


async def create_key(request: Request, services: Services) -> Any:
    """POST /admin/keys: the new key's secret is in the answer, and nowhere else, ever."""
    tenancy = services.settings.tenancy
    wanted = key_request(
        await json_body(request, services), tenancy.tiers, tenancy.default_tier, time.time()
    )
    try:
        issued = await services.tenancy.keys.create_key(wanted)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="tenant") from None
    return {**key_json(issued.key, time.time()), "key": issued.secret}


async def get_key(request: Request, services: Services) -> Any:
    """GET /admin/keys/{key_id}."""
    return key_json(await _key(services, request.path_params["key_id"]), time.time())


async def revoke_key(request: Request, services: Services) -> Any:
    """DELETE /admin/keys/{key_id}: the key stops working within the key cache time."""
    await _key(services, request.path_params["key_id"])
    revoked = await services.tenancy.keys.revoke(request.path_params["key_id"])
    return key_json(revoked, time.time())


async def rotate_key(request: Request, services: Services) -> Any:
    """POST /admin/keys/{key_id}/rotate {"grace": "1h"}: a new secret, same grants."""
    body = await json_body(request, services)
    grace = DEFAULT_ROTATION_GRACE_SECONDS
    if body.get("grace") is not None:
        try:
            grace = parse_duration(str(body["grace"]))
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="grace") from None
    await _key(services, request.path_params["key_id"])
    try:
        issued = await services.tenancy.keys.rotate(request.path_params["key_id"], grace)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    return {**key_json(issued.key, time.time()), "key": issued.secret}


async def _key(services: Services, key_id: str) -> Any:
    try:
        return await services.tenancy.keys.get(key_id)
    except KeyNotFound:
        raise _no_such_key(key_id) from None


def _no_such_key(key_id: str) -> SeawallError:
    return NotFound(f"No API key has the id {key_id!r}; list them with GET /admin/keys.")
