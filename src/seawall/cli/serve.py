"""``seawall serve``: run the gateway."""

from __future__ import annotations

import argparse
import asyncio
import logging.config
import os
import sys
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from seawall.config import ConfigError, Settings, load_from_environment
from seawall.control.master_key import resolve_master_key
from seawall.http.app import build_app
from seawall.http.server_protocol import PROTOCOL as COALESCING_HTTPTOOLS
from seawall.monitoring.endpoint import MULTIPROCESS_DIR
from seawall.monitoring.json_logs import logging_config
from seawall.stores.migrate import upgrade


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``serve``."""
    serve = subparsers.add_parser(
        "serve",
        help="run the gateway",
        description=(
            "Serve the OpenAI- and Anthropic-compatible API. Without --config (or "
            "$SEAWALL_CONFIG) Seawall runs the embedded default: SQLite and in-process stores "
            "in ./.seawall, the bundled local chat and embedding models, and OpenAI/Anthropic "
            "models when OPENAI_API_KEY/ANTHROPIC_API_KEY are set."
        ),
    )
    serve.add_argument("--config", metavar="FILE", help="YAML configuration (see docs/)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load settings, prepare the data directory and database, then serve."""
    try:
        settings = load_from_environment(args.config, host=args.host, port=args.port)
    except ConfigError as exc:
        print("Seawall cannot start; the configuration has problems:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    logging.config.dictConfig(logging_config(settings))
    key = resolve_master_key(settings.master_key, settings.data_dir)
    if key.origin == "generated":
        print(f"Seawall master key (shown once; kept in {key.path}): {key.value}", flush=True)
    elif key.origin == "data directory":
        print(f"Seawall master key: kept in {key.path}", flush=True)
    asyncio.run(upgrade(settings.stores.database_url))
    workers = args.workers or settings.server.workers
    print(
        f"Seawall serving {len(settings.models)} models from {settings.source} on "
        f"http://{settings.server.host}:{settings.server.port} ({workers} worker(s))",
        flush=True,
    )
    if workers > 1:
        return _serve_workers(args, settings, key.value, workers)
    app = build_app(settings, key.value, migrate=False, serving_process=True)
    uvicorn.run(app, **_server_options(settings))
    return 0


def _server_options(settings: Settings) -> dict[str, Any]:
    return {
        "host": settings.server.host,
        "port": settings.server.port,
        "loop": "uvloop",
        # httptools, with a response's writes of one loop turn sent together.
        "http": COALESCING_HTTPTOOLS,
        "access_log": False,
        # Seawall resolves X-Forwarded-For itself, trusting only tenancy.trusted_proxies;
        # uvicorn's own rewrite (on by default, trusting 127.0.0.1) would bypass that.
        "proxy_headers": False,
        "log_level": settings.server.log_level,
        # uvicorn applies it again, and in each worker process; its own lines use it.
        "log_config": logging_config(settings),
        # Seawall cuts what is unfinished at the end of server.grace_seconds itself
        # (http.drain); uvicorn's own timeout, a second later, is the backstop.
        "timeout_graceful_shutdown": settings.server.grace_seconds + 1,
    }


def _serve_workers(args: argparse.Namespace, settings: Settings, key: str, workers: int) -> int:
    # Worker processes re-read the same settings from the environment at start-up.
    if args.config:
        os.environ["SEAWALL_CONFIG"] = os.path.abspath(args.config)
    os.environ["SEAWALL_HOST"] = settings.server.host
    os.environ["SEAWALL_PORT"] = str(settings.server.port)
    os.environ["SEAWALL_MASTER_KEY"] = key
    # Each worker keeps its metric values in files there; a scrape of any sums them all.
    metrics_dir = settings.data_dir / "metrics"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):  # a previous run's values
        stale.unlink()
    os.environ[MULTIPROCESS_DIR] = str(metrics_dir.resolve())
    config = uvicorn.Config(
        "seawall.http.worker:create_app",
        factory=True,
        workers=workers,
        # A worker busy importing and starting may not answer the supervisor's ping in
        # uvicorn's default 5 s on a small machine; it would be killed as hung.
        timeout_worker_healthcheck=30,
        **_server_options(settings),
    )
    _Supervisor(config, sockets=[config.bind_socket()]).run()
    return 0


class _Supervisor(Multiprocess):
    """uvicorn's worker supervisor, letting go of the listening socket when stopping.

    The parent holds the socket its workers accept on. uvicorn's parent keeps it open
    while its workers drain, so new connections would wait, unanswered, in the
    socket's queue; closed here, they are refused, and a load balancer tries another
    instance at once.
    """

    def terminate_all(self) -> None:
        """Close the parent's copy of the listening socket, then stop the workers."""
        for sock in self.sockets:
            sock.close()
        super().terminate_all()
