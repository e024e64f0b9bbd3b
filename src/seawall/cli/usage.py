"""``seawall usage REPORT``: spend and error reports from the request ledger, as JSON or CSV."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from seawall.cli.database_command import settings_or_report
from seawall.control.analytics import REPORTS, Row, run_report
from seawall.control.report_filters import DIMENSIONS, ReportFilters, parse_filters
from seawall.control.report_format import FORMATS, format_rows
from seawall.errors import SeawallError
from seawall.stores.database import async_url, create_engine, is_memory_sqlite

_DESCRIPTION = """\
Print a usage report from the request ledger in the database Seawall is configured
with (--config, $SEAWALL_CONFIG or $SEAWALL_DATABASE_URL), as JSON or CSV.

Times are UTC. A DATE is 2025-01-31, 2025-01-31T12:00:00Z or unix seconds; --since
is inclusive and --until exclusive, so --since 2025-01-01 --until 2025-02-01 is January.

Reports:
""" + "\n".join(f"  {spec.name:<14} {spec.summary}" for spec in REPORTS.values())


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``usage``."""
    usage = subparsers.add_parser(
        "usage",
        help="print spend, conversation and error reports",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    usage.add_argument(
        "report", metavar="REPORT", choices=list(REPORTS), help="one of the reports above"
    )
    usage.add_argument("--config", metavar="FILE", help="YAML configuration (see docs/)")
    usage.add_argument("--since", metavar="DATE", help="count requests from this time on")
    usage.add_argument("--until", metavar="DATE", help="count requests before this time")
    usage.add_argument("--tenant", metavar="ID", help="only this tenant's requests")
    usage.add_argument("--by", choices=sorted(DIMENSIONS), help="what the spend report groups by")
    usage.add_argument("--limit", metavar="N", help="at most N rows (ranked reports default to 50)")
    usage.add_argument(
        "--format", choices=FORMATS, default="json", help="output format (default: %(default)s)"
    )
    usage.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read the configuration, run the report and print it."""
    settings = settings_or_report(args.config)
    if settings is None:
        return 2
    params = {
        name: value
        for name in ("since", "until", "tenant", "by", "limit")
        if (value := getattr(args, name)) is not None
    }
    try:
        filters = parse_filters(params)
    except SeawallError as exc:
        print(f"seawall usage: {exc.message}", file=sys.stderr)
        return 2
    url = settings.stores.database_url
    shown = make_url(url).render_as_string(hide_password=True)
    target = async_url(url)
    # Opening a missing SQLite file would create an empty one.
    if (
        target.get_backend_name() == "sqlite"
        and not is_memory_sqlite(target)
        and not Path(target.database or "").expanduser().exists()
    ):
        print(f"seawall usage: no database at {shown}; has Seawall run?", file=sys.stderr)
        return 1
    try:
        rows = asyncio.run(_report(url, args.report, filters))
    except SeawallError as exc:
        print(f"seawall usage: {exc.message}", file=sys.stderr)
        return 2
    except (SQLAlchemyError, OSError) as exc:
        # The driver's own message, without SQLAlchemy's statement dump.
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        print(f"seawall usage: cannot read {shown}: {detail}", file=sys.stderr)
        return 1
    sys.stdout.write(format_rows(rows, REPORTS[args.report].columns, args.format))
    return 0


async def _report(url: str, name: str, filters: ReportFilters) -> list[Row]:
    engine = create_engine(url)
    try:
        return await run_report(engine, name, filters)
    finally:
        await engine.dispose()
