"""``seawall``: entry point and subcommand registry."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from seawall.cli import (
    budgets,
    cache,
    config_check,
    guard,
    guard_review,
    keys,
    serve,
    simulate,
    usage,
)


def parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    root = argparse.ArgumentParser(
        prog="seawall",
        description="Seawall: a self-hosted gateway and control plane for LLM applications.",
    )
    subparsers = root.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serve.register(subparsers)
    simulate.register(subparsers)
    config_check.register(subparsers)
    keys.register(subparsers)
    budgets.register(subparsers)
    usage.register(subparsers)
    cache.register(subparsers)
    guard.register(subparsers)
    guard_review.register(subparsers)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen subcommand; returns the process exit status."""
    args = parser().parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
