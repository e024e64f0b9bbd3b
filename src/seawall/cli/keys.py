"""``seawall keys …`` and ``seawall tenants …``: manage API keys against the configured database.

The CLI only parses flags and hands over to the key store; it prints JSON with
``--json``, or lines a person reads.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from seawall.cli.database_command import NotFoundError, add_action
from seawall.config import Settings
from seawall.control.key_requests import key_json, key_request, parse_duration
from seawall.tenancy.key_store import KeyNotFound, SqlKeyStore


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``keys`` and ``tenants``."""
    keys = subparsers.add_parser("keys", help="create, list, revoke and rotate API keys")
    actions = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    create = add_action(
        actions, "create", "create a key; its secret is printed once", _create, _print
    )
    create.add_argument("--tenant", default="default", help="tenant id (created if new)")
    create.add_argument("--name", default="", help="what the key is for")
    create.add_argument("--tier", help="tier name (default: tenancy.default_tier)")
    create.add_argument("--user", help="bind the key to one end user")
    create.add_argument("--models", help="comma-separated public models the key may use")
    create.add_argument("--endpoints", help="comma-separated endpoints the key may call")
    create.add_argument("--rpm", type=int, help="requests per minute for this key")
    create.add_argument("--tpm", type=int, help="tokens per minute for this key")
    create.add_argument("--expires-in", help="lifetime such as 12h, 30d or 2w")

    listing = add_action(actions, "list", "list keys (never their secrets)", _list, _print)
    listing.add_argument("--tenant", help="only this tenant's keys")

    revoke = add_action(actions, "revoke", "stop a key from working", _revoke, _print)
    revoke.add_argument("key_id", metavar="KEY_ID")

    rotate = add_action(actions, "rotate", "replace a key's secret, same grants", _rotate, _print)
    rotate.add_argument("key_id", metavar="KEY_ID")
    rotate.add_argument("--grace", default="1h", help="how long the old secret still works")

    tenants = subparsers.add_parser("tenants", help="list and create tenants")
    tenant_actions = tenants.add_subparsers(dest="tenants_command", metavar="ACTION", required=True)
    add_action(tenant_actions, "list", "list tenants", _tenants, _print)
    tenant = add_action(tenant_actions, "create", "create a tenant", _create_tenant, _print)
    tenant.add_argument("tenant_id", metavar="ID")
    tenant.add_argument("--name", help="display name")


def _print(result: Any) -> None:
    rows = result if isinstance(result, list) else [result]
    for row in rows:
        if "prefix" in row:
            print(
                f"{row['id']}  {row['prefix']}…  tenant={row['tenant']}  tier={row['tier']}  "
                f"{row['state']}  {row['name']}"
            )
        else:
            print(f"{row.get('tenant_id', row.get('id'))}  {row.get('name', '')}")
        if "key" in row:
            print(f"secret (shown once, store it now): {row['key']}")


def _csv(text: str | None) -> list[str] | None:
    return None if text is None else [item.strip() for item in text.split(",") if item.strip()]


async def _create(args: argparse.Namespace, engine: AsyncEngine, settings: Settings) -> Any:
    keys = SqlKeyStore(engine, time.time)
    body: dict[str, Any] = {
        "tenant": args.tenant,
        "name": args.name,
        "tier": args.tier,
        "user": args.user,
        "models": _csv(args.models),
        "endpoints": _csv(args.endpoints),
        "rpm": args.rpm,
        "tpm": args.tpm,
        "expires_in": args.expires_in,
    }
    tenancy = settings.tenancy
    wanted = key_request(body, tenancy.tiers, tenancy.default_tier, time.time())
    issued = await keys.create_key(wanted)
    return {**key_json(issued.key, time.time()), "key": issued.secret}


async def _list(args: argparse.Namespace, engine: AsyncEngine, settings: Settings) -> Any:
    keys = SqlKeyStore(engine, time.time)
    now = time.time()
    return [key_json(key, now) for key in await keys.list_keys(args.tenant)]


async def _revoke(args: argparse.Namespace, engine: AsyncEngine, settings: Settings) -> Any:
    keys = SqlKeyStore(engine, time.time)
    try:
        return key_json(await keys.revoke(args.key_id), time.time())
    except KeyNotFound:
        raise NotFoundError(f"no API key has the id {args.key_id!r}") from None


async def _rotate(args: argparse.Namespace, engine: AsyncEngine, settings: Settings) -> Any:
    keys = SqlKeyStore(engine, time.time)
    try:
        issued = await keys.rotate(args.key_id, parse_duration(args.grace))
    except KeyNotFound:
        raise NotFoundError(f"no API key has the id {args.key_id!r}") from None
    return {**key_json(issued.key, time.time()), "key": issued.secret}


async def _tenants(args: argparse.Namespace, engine: AsyncEngine, settings: Settings) -> Any:
    keys = SqlKeyStore(engine, time.time)
    return await keys.list_tenants()


async def _create_tenant(args: argparse.Namespace, engine: AsyncEngine, settings: Settings) -> Any:
    keys = SqlKeyStore(engine, time.time)
    await keys.create_tenant(args.tenant_id, args.name)
    return {"id": args.tenant_id, "name": args.name or args.tenant_id}
