"""``seawall cache invalidate``: make cached answers stale, by tenant, model and age.

The invalidation is written to the configured database; running gateways apply it
within ``cache.invalidation_refresh_seconds``, whatever their cache backend.
"""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from seawall.cache.invalidation import SqlInvalidations
from seawall.cli.database_command import add_action
from seawall.config import Settings
from seawall.control.admin_cache import invalidation_json


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``cache``."""
    cache = subparsers.add_parser("cache", help="manage the response cache")
    actions = cache.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    invalidate = add_action(
        actions, "invalidate", "stop cached answers from being served", _invalidate, _show
    )
    invalidate.add_argument("--tenant", help="only this tenant's entries")
    invalidate.add_argument("--model", help="only this public model's entries")
    invalidate.add_argument(
        "--older-than",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="only entries stored more than SECONDS ago (default: all)",
    )


async def _invalidate(args: argparse.Namespace, engine: AsyncEngine, settings: Settings) -> Any:
    if args.older_than < 0:
        raise ValueError("--older-than must be >= 0")
    made = await SqlInvalidations(engine).add(
        tenant=args.tenant, model=args.model, older_than_s=args.older_than
    )
    return invalidation_json(made)


def _show(result: Any) -> None:
    tenant = result["tenant"] or "every tenant"
    model = result["model"] or "every model"
    before = result["stored_before"]
    print(f"invalidated {result['id']}: {tenant}, {model}, stored before {before:.3f}")
