"""The frozen shape of Seawall's configuration, after parsing and validation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

ProviderKind = Literal["openai", "anthropic", "local-llama", "local-embedding"]
Operation = Literal["chat", "embeddings"]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Per-phase upstream timeouts in seconds."""

    connect: float = 5.0
    first_byte: float = 60.0
    between_chunks: float = 30.0
    total: float = 600.0


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per million tokens."""

    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0
    cached_input_per_mtok: float = 0.0


@dataclass(frozen=True, slots=True)
class Deployment:
    """One upstream endpoint serving one model."""

    name: str
    provider: ProviderKind
    model: str
    operation: Operation = "chat"
    api_base: str | None = None
    api_key: str | None = None
    context_window: int = 8192
    max_output_tokens: int = 4096
    prices: Prices = field(default_factory=Prices)
    timeouts: Timeouts = field(default_factory=Timeouts)
    # Local runtimes: how many requests run at once, and CPU threads each.
    max_concurrency: int = 1
    threads: int = 1
    # A local model's file; None means the bundled one.
    model_path: str | None = None


@dataclass(frozen=True, slots=True)
class PublicModel:
    """A name clients send, mapped to ordered deployments."""

    name: str
    deployments: tuple[str, ...]
    operation: Operation = "chat"
    owned_by: str = "seawall"


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """How the HTTP server listens and what it accepts."""

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    max_body_bytes: int = 1_048_576
    log_level: str = "info"


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """Where state lives: a SQL database and an optional Redis."""

    database_url: str
    redis_url: str | None = None
    record_flush_seconds: float = 0.5
    record_batch_size: int = 500


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything Seawall reads at start-up, validated and frozen."""

    server: ServerSettings
    stores: StoreSettings
    data_dir: Path
    master_key: str | None
    deployments: dict[str, Deployment]
    models: dict[str, PublicModel]
    source: str = "<embedded default>"

    def deployments_for(self, model: PublicModel) -> tuple[Deployment, ...]:
        """The deployments of a public model, in order."""
        return tuple(self.deployments[name] for name in model.deployments)
