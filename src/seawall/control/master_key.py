"""The master key: from configuration, or generated once and kept in the data directory."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

KEY_FILE = "master_key"


@dataclass(frozen=True, slots=True)
class MasterKey:
    """The key and where it came from."""

    value: str
    origin: str  # "configuration", "data directory" or "generated"
    path: Path | None = None


def resolve_master_key(configured: str | None, data_dir: Path) -> MasterKey:
    """The configured key, else the kept one, else a new one written with mode 0600."""
    if configured:
        return MasterKey(configured, "configuration")
    path = data_dir / KEY_FILE
    if path.exists():
        return MasterKey(path.read_text(encoding="utf-8").strip(), "data directory", path)
    data_dir.mkdir(parents=True, exist_ok=True)
    value = "sk-seawall-" + secrets.token_urlsafe(32)
    # O_EXCL: when several workers start at once, exactly one writes the key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return MasterKey(path.read_text(encoding="utf-8").strip(), "data directory", path)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return MasterKey(value, "generated", path)
