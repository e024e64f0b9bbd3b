"""The app factory each worker process calls when ``seawall serve --workers N``."""

from __future__ import annotations

from seawall.config import load_from_environment
from seawall.http.app import build_app
from seawall.http.serving_app import ServingApp


def create_app() -> ServingApp:
    """Settings from the environment the parent prepared; migrations already ran.

    Logging is set up already: uvicorn applied the parent's ``log_config`` in this
    process before calling the factory (``monitoring.json_logs.logging_config``).
    """
    settings = load_from_environment()
    assert settings.master_key, "the parent process passes the master key"
    return build_app(settings, settings.master_key, migrate=False, serving_process=True)
