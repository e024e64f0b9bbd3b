"""``seawall config check FILE``: report every problem in a configuration file."""

from __future__ import annotations

import argparse
from typing import Any

from seawall.config import ConfigError, load_from_environment


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``config check``."""
    config = subparsers.add_parser("config", help="work with configuration files")
    actions = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check",
        help="validate a configuration file and list every problem with its key",
        description=(
            "Read FILE the way `seawall serve --config FILE` would (with ${VAR} interpolation "
            "and SEAWALL_* environment overrides) and report every problem, each naming the "
            "file and the key. Exit status 0 when the file is valid, 1 otherwise."
        ),
    )
    check.add_argument("file", metavar="FILE", help="the YAML configuration file")
    check.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate and summarise."""
    try:
        settings = load_from_environment(args.file)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem)
        print(f"{len(exc.problems)} problem(s) found.")
        return 1
    print(
        f"{args.file}: OK: {len(settings.deployments)} deployments, "
        f"{len(settings.models)} public models."
    )
    for model in settings.models.values():
        router = model.router
        if router is not None:
            print(
                f"  {model.name} (router) -> cheap {router.cheap}, strong {router.strong}, "
                f"threshold {router.threshold}"
            )
        else:
            print(f"  {model.name} ({model.operation}) -> {', '.join(model.deployments)}")
    return 0
