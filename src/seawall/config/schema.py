"""The frozen shape of Seawall's configuration, after parsing and validation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from seawall.config.cache import CacheSettings
from seawall.config.guard import GuardSettings
from seawall.config.monitoring import MonitoringSettings
from seawall.config.tenancy import TenancySettings
from seawall.resilience.admission import AdmissionSettings
from seawall.resilience.backoff import Backoff
from seawall.resilience.circuit_breaker import BreakerSettings
from seawall.resilience.rate_budget import RateLimits
from seawall.routing.complexity import ComplexityPolicy

ProviderKind = Literal["openai", "anthropic", "local-llama", "local-embedding"]
Operation = Literal["chat", "embeddings"]
# How a public model spreads requests over its deployments.
Strategy = Literal["ordered", "balanced"]


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
    # None: cached prompt tokens cost the input rate (no prompt-cache discount known).
    cached_input_per_mtok: float | None = None

    @property
    def cached_rate(self) -> float:
        """USD per million cached prompt tokens."""
        cached = self.cached_input_per_mtok
        return self.input_per_mtok if cached is None else cached


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
    # What the deployment costs; None: the shipped price table's row for its model
    # (zero for local runtimes and models the table does not know).
    prices: Prices | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    # The provider's limits (RPM, TPM) and how Seawall learns them from 429s.
    limits: RateLimits = field(default_factory=RateLimits)
    # Share of a balanced model's traffic, relative to its other deployments.
    weight: float = 1.0
    # Local runtimes: how many requests run at once, and CPU threads each.
    max_concurrency: int = 1
    threads: int = 1
    # Local chat models: layers llama.cpp offloads to a GPU when it is built with CUDA
    # (deploy/docker/Dockerfile.cuda); 0 keeps the model on the CPU, 999 offloads all.
    gpu_layers: int = 0
    # A local model's file; None means the bundled one.
    model_path: str | None = None


@dataclass(frozen=True, slots=True)
class PublicModel:
    """A name clients send, mapped to ordered deployments."""

    name: str
    deployments: tuple[str, ...]
    operation: Operation = "chat"
    owned_by: str = "seawall"
    # "ordered": the first deployment answers and the others are fallbacks, in order;
    # "balanced": spread by weight, outstanding requests and latency.
    strategy: Strategy = "ordered"
    # Public models tried, in order, when every deployment of this one failed.
    fallbacks: tuple[str, ...] = ()
    # The public model to use when a prompt does not fit this model's context window.
    context_fallback: str | None = None
    # A router model has no deployments: each request goes to the cheap or the strong
    # model the policy names, by the request's complexity score.
    router: ComplexityPolicy | None = None


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """How the HTTP server listens and what it accepts."""

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    max_body_bytes: int = 1_048_576
    log_level: str = "info"
    # On SIGTERM: keep serving this long with /health/ready answering 503, so that load
    # balancers and Kubernetes stop sending before the listening socket closes ...
    drain_seconds: float = 0.0
    # ... then give the requests and streams in flight this long to finish.
    grace_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """Where state lives: a SQL database and an optional Redis."""

    database_url: str
    redis_url: str | None = None
    record_flush_seconds: float = 0.5
    record_batch_size: int = 500


@dataclass(frozen=True, slots=True)
class RetryBudgetSettings:
    """How many retries a deployment may receive: a share of its recent requests."""

    ratio: float = 0.2
    min_per_second: float = 1.0
    window_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class ResilienceSettings:
    """Retries, breakers, waiting for provider capacity and admission."""

    # Upstream attempts per request, counting fallbacks and the first attempt.
    max_attempts: int = 3
    # The longest a request waits for provider capacity (RPM/TPM, learned rates), over
    # all of its attempts together.
    max_queue_wait_seconds: float = 10.0
    # The deadline of a request that sends no x-seawall-deadline-ms.
    default_deadline_seconds: float = 600.0
    backoff: Backoff = field(default_factory=Backoff)
    retry_budget: RetryBudgetSettings = field(default_factory=RetryBudgetSettings)
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    admission: AdmissionSettings = field(default_factory=AdmissionSettings)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything Seawall reads at start-up, validated and frozen."""

    server: ServerSettings
    stores: StoreSettings
    data_dir: Path
    master_key: str | None
    deployments: dict[str, Deployment]
    models: dict[str, PublicModel]
    resilience: ResilienceSettings = field(default_factory=ResilienceSettings)
    tenancy: TenancySettings = field(default_factory=TenancySettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    guard: GuardSettings = field(default_factory=GuardSettings)
    source: str = "<embedded default>"

    def deployments_for(self, model: PublicModel) -> tuple[Deployment, ...]:
        """The deployments of a public model, in order; a router's are its targets'."""
        if model.router is not None:
            names = dict.fromkeys(
                name
                for target in model.router.targets()
                for name in self.models[target].deployments
            )
            return tuple(self.deployments[name] for name in names)
        return tuple(self.deployments[name] for name in model.deployments)
