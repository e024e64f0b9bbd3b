"""``seawall budgets …``: set, list and delete budget rules in the configured database.

Running gateways pick up a change within ``tenancy.budget_rules_refresh_seconds``.
"""

from __future__ import annotations

import argparse
from typing import Any, get_args

from sqlalchemy.ext.asyncio import AsyncEngine

from seawall.cli.database_command import NotFoundError, add_action
from seawall.config import Settings
from seawall.control.admin_budgets import budget_json
from seawall.tenancy.budget_rules import SqlBudgetRules
from seawall.tenancy.budgets import SCOPES, BudgetRule, Period


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``budgets``."""
    budgets = subparsers.add_parser("budgets", help="set, list and delete spend budgets")
    actions = budgets.add_subparsers(dest="budgets_command", metavar="ACTION", required=True)
    put = add_action(actions, "set", "create or replace a budget", _set, _show)
    put.add_argument("--scope", required=True, choices=SCOPES)
    put.add_argument("--subject", required=True, help="tenant id, key id, user, session or tag")
    put.add_argument("--period", default="monthly", choices=get_args(Period))
    put.add_argument("--soft", type=float, help="USD: alert once spend reaches this")
    put.add_argument("--hard", type=float, help="USD: refuse requests once spend reaches this")
    listing = add_action(actions, "list", "list budgets", _list, _show)
    listing.add_argument("--scope", choices=SCOPES)
    listing.add_argument("--subject")
    remove = add_action(actions, "delete", "delete a budget", _delete, _show)
    remove.add_argument("budget_id", metavar="BUDGET_ID")


async def _set(args: argparse.Namespace, engine: AsyncEngine, settings: Settings) -> Any:
    rule = BudgetRule(args.scope, args.subject, args.period, args.soft, args.hard)
    return budget_json(await SqlBudgetRules(engine).put(rule))


async def _list(args: argparse.Namespace, engine: AsyncEngine, settings: Settings) -> Any:
    rules = await SqlBudgetRules(engine).list_rules(scope=args.scope, subject=args.subject)
    return [budget_json(rule) for rule in rules]


async def _delete(args: argparse.Namespace, engine: AsyncEngine, settings: Settings) -> Any:
    if not await SqlBudgetRules(engine).delete(args.budget_id):
        raise NotFoundError(f"no budget has the id {args.budget_id!r}")
    return {"id": args.budget_id, "deleted": True}


def _show(result: Any) -> None:
    for row in result if isinstance(result, list) else [result]:
        if "scope" not in row:
            print(f"deleted {row['id']}")
            continue
        limits = ", ".join(
            f"{name} ${row[key]:g}"
            for name, key in (("soft", "soft_usd"), ("hard", "hard_usd"))
            if row[key] is not None
        )
        print(f"{row['id']}  {row['scope']}={row['subject']}  {row['period']}  {limits}")
