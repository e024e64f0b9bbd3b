"""Where Seawall's Redis is: a ``redis://``, ``rediss://`` or ``unix://`` URL, parsed once.

Parsed when the configuration is read, so a malformed URL is a configuration error
that names its key, and again by the client that connects to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to connect, read from a ``redis://``, ``rediss://`` or ``unix://`` URL."""

    host: str = "127.0.0.1"
    port: int = 6379
    path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        """Parse a Redis URL; ``ValueError`` names what is wrong (never the password)."""
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"unsupported Redis URL scheme {parts.scheme!r}")
        try:
            port = parts.port or 6379
        except ValueError:
            raise ValueError("the Redis port must be a number from 1 to 65535") from None
        query = dict(pair.split("=", 1) for pair in parts.query.split("&") if "=" in pair)
        in_path = parts.path.lstrip("/") if parts.scheme != "unix" else ""
        db_text = in_path or query.get("db") or "0"
        if not db_text.isdigit():
            raise ValueError(f"the Redis database must be a number, got {db_text!r}")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=port,
            path=parts.path if parts.scheme == "unix" else None,
            db=int(db_text),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=parts.scheme == "rediss",
        )
