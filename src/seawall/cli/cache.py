"""``seawall cache invalidate`` and ``seawall cache warm``.

``invalidate`` makes cached answers stale, by tenant, model and age: it writes to the
configured database, and running gateways apply it within
``cache.invalidation_refresh_seconds``, whatever their cache backend.

``warm`` asks a running gateway (its admin API, ``POST /admin/cache/warm``) to give a
new model the most requested entries of another: replayed against the new model, or
copied with ``--copy``. With the in-process store each worker has its own cache and
only the one that takes the call is warmed; with Redis every instance shares it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
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
    warm = actions.add_parser(
        "warm",
        help="give a new model the most requested cached answers of another",
        description="Give a new model the most requested cached answers of another.",
    )
    warm.add_argument("--url", default="http://127.0.0.1:8080", help="the running gateway")
    warm.add_argument("--from-model", required=True, help="the model whose entries to use")
    warm.add_argument("--to-model", required=True, help="the model to warm")
    warm.add_argument("--top", type=int, default=100, help="how many entries (default 100)")
    warm.add_argument(
        "--copy", action="store_true", help="copy the answers instead of asking --to-model"
    )
    warm.add_argument("--json", action="store_true", help="print JSON")
    warm.set_defaults(func=_warm)
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


def _warm(args: argparse.Namespace) -> int:
    key = os.environ.get("SEAWALL_ADMIN_KEY") or os.environ.get("SEAWALL_MASTER_KEY")
    if not key:
        print(
            "error: set SEAWALL_ADMIN_KEY (or SEAWALL_MASTER_KEY) to an admin key", file=sys.stderr
        )
        return 2
    body = {
        "from_model": args.from_model,
        "to_model": args.to_model,
        "top": args.top,
        "mode": "copy" if args.copy else "replay",
    }
    request = urllib.request.Request(
        f"{args.url.rstrip('/')}/admin/cache/warm",
        data=json.dumps(body).encode(),
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
        method="POST",
    )
    try:
        # No timeout: replaying many requests takes as long as their answers.
        with urllib.request.urlopen(request) as response:
            result = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        print(f"error: {_error_message(exc)}", file=sys.stderr)
        return 2
    except (urllib.error.URLError, OSError) as exc:
        print(f"error: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"warmed {result['warmed']} entries of {result['to_model']} from "
            f"{result['from_model']} ({result['mode']}); skipped {result['skipped']}"
        )
    return 0


def _error_message(error: urllib.error.HTTPError) -> str:
    """The OpenAI-shaped error's message, or the status line."""
    try:
        message: str = json.loads(error.read())["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return f"{error.code} {error.reason}"
    return message
