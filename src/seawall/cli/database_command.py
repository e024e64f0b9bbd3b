"""CLI actions that work on the configured database: parse flags, run, print.

Each action reads the configuration the way ``seawall serve`` does (``--config``,
``$SEAWALL_CONFIG``, ``SEAWALL_*``), migrates the database, runs its work and prints
the result: JSON with ``--json``, else the action's own lines for a person.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from seawall.config import ConfigError, Settings, load_from_environment
from seawall.errors import SeawallError
from seawall.stores.database import create_engine
from seawall.stores.migrate import upgrade

Work = Callable[[argparse.Namespace, AsyncEngine, Settings], Awaitable[Any]]
Show = Callable[[Any], None]


class NotFoundError(LookupError):
    """What the action was asked about does not exist (exit status 1)."""


def add_action(
    actions: argparse._SubParsersAction[Any], name: str, help_text: str, work: Work, show: Show
) -> argparse.ArgumentParser:
    """A subcommand running ``work`` and printing its result with ``show`` (or as JSON)."""
    parser: argparse.ArgumentParser = actions.add_parser(
        name, help=help_text, description=help_text
    )
    parser.add_argument("--config", metavar="FILE", help="YAML configuration (see docs/)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=lambda args: run(args, work, show))
    return parser


def settings_or_report(config: str | None) -> Settings | None:
    """The settings ``seawall serve`` would read, or None after printing every problem."""
    try:
        return load_from_environment(config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def run(args: argparse.Namespace, work: Work, show: Show) -> int:
    """Load settings, run ``work`` against the database, print; the exit status."""
    settings = settings_or_report(args.config)
    if settings is None:
        return 2

    async def main() -> Any:
        await upgrade(settings.stores.database_url)
        engine = create_engine(settings.stores.database_url)
        try:
            return await work(args, engine, settings)
        finally:
            await engine.dispose()

    try:
        result = asyncio.run(main())
    except NotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except SeawallError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        show(result)
    return 0
