"""Reading configuration once: YAML file, ``${VAR}`` interpolation, environment overrides.

Every problem is collected and reported together, each naming the file and the
key, so ``seawall config check`` tells the operator everything at once.
Environment variables are read here and nowhere else.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar, get_args

import yaml

from seawall.config.cache import CacheSettings, SemanticSettings
from seawall.config.defaults import local_deployments, one_to_one_models, provider_deployments
from seawall.config.guard_load import read_guard
from seawall.config.monitoring import (
    LogSettings,
    MonitoringSettings,
    QualitySettings,
    TracingSettings,
)
from seawall.config.router_load import check_routers, is_router, read_router
from seawall.config.schema import (
    Deployment,
    Operation,
    Prices,
    ProviderKind,
    PublicModel,
    ResilienceSettings,
    RetryBudgetSettings,
    ServerSettings,
    Settings,
    StoreSettings,
    Strategy,
    Timeouts,
)
from seawall.config.tenancy_load import read_tenancy
from seawall.resilience.admission import AdmissionSettings
from seawall.resilience.backoff import Backoff
from seawall.resilience.circuit_breaker import BreakerSettings
from seawall.resilience.rate_budget import RateLimits
from seawall.stores.redis_endpoint import Endpoint

_T = TypeVar("_T")

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_PROVIDERS: tuple[str, ...] = get_args(ProviderKind)
_OPERATIONS: tuple[str, ...] = get_args(Operation)
_TOP_LEVEL = {
    "server",
    "stores",
    "data_dir",
    "master_key",
    "deployments",
    "models",
    "local_models",
    "resilience",
    "tenancy",
    "cache",
    "monitoring",
    "guard",
}
_STRATEGIES: tuple[str, ...] = get_args(Strategy)

# Environment variables that override a setting, and the setting they override.
ENV_OVERRIDES = {
    "SEAWALL_HOST": ("server", "host"),
    "SEAWALL_PORT": ("server", "port"),
    "SEAWALL_WORKERS": ("server", "workers"),
    "SEAWALL_MAX_BODY_BYTES": ("server", "max_body_bytes"),
    "SEAWALL_DRAIN_SECONDS": ("server", "drain_seconds"),
    "SEAWALL_GRACE_SECONDS": ("server", "grace_seconds"),
    "SEAWALL_DATABASE_URL": ("stores", "database_url"),
    "SEAWALL_REDIS_URL": ("stores", "redis_url"),
}


class ConfigError(Exception):
    """Configuration that Seawall refuses to start with; lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Reader:
    """Collects problems while walking the raw document."""

    def __init__(self, source: str, environ: Mapping[str, str]) -> None:
        self.source = source
        self.environ = environ
        self.problems: list[str] = []
        # Keys whose value an environment override (SEAWALL_*) set: key -> variable.
        self.overridden: dict[str, str] = {}

    def problem(self, key: str, message: str) -> None:
        variable = self.overridden.get(key)
        source = f"environment variable {variable}" if variable else self.source
        self.problems.append(f"{source}: {key}: {message}")

    def interpolate(self, key: str, value: Any) -> Any:
        if isinstance(value, str):
            return _VARIABLE.sub(lambda match: self._variable(key, match), value)
        if isinstance(value, dict):
            return {
                k: self.interpolate(f"{key}.{k}" if key else str(k), v) for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.interpolate(f"{key}[{i}]", v) for i, v in enumerate(value)]
        return value

    def _variable(self, key: str, match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = self.environ.get(name)
        if value is not None:
            return value
        if default is not None:
            return default
        self.problem(key, f"environment variable {name} is not set (use ${{{name}:-}} for empty)")
        return ""

    def section(self, key: str, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(key, f"must be a mapping, not {type(value).__name__}")
            return {}
        return value

    def dataclass_fields(self, key: str, raw: dict[str, Any], cls: type[Any]) -> dict[str, Any]:
        """Coerce a mapping into keyword arguments for a flat dataclass of scalars."""
        known = {f.name: f for f in fields(cls)}
        out: dict[str, Any] = {}
        for name, value in raw.items():
            field = known.get(name)
            if field is None:
                self.problem(f"{key}.{name}", f"unknown key; expected one of {sorted(known)}")
                continue
            coerced = self.scalar(f"{key}.{name}", value, _kind(field.type))
            if coerced is not None:
                out[name] = coerced
        return out

    def build(self, key: str, cls: type[_T], raw: Any, **extra: Any) -> _T | None:
        """A frozen settings value from a mapping; its own validation errors name ``key``."""
        kwargs = self.dataclass_fields(key, self.section(key, raw), cls)
        try:
            return cls(**kwargs, **extra)
        except ValueError as exc:
            self.problem(key, str(exc))
            return None

    def scalar(self, key: str, value: Any, kind: str) -> Any:
        if value is None:
            return None
        if kind == "bool":
            if not isinstance(value, bool):
                self.problem(key, f"must be true or false, got {value!r}")
                return None
            return value
        try:
            if kind == "int" or kind.startswith("int "):
                if isinstance(value, bool):
                    raise ValueError
                number = int(value)
                if number < 0:
                    raise ValueError
                return number
            if kind == "float":
                if isinstance(value, bool):
                    raise ValueError
                seconds = float(value)
                if seconds < 0:
                    raise ValueError
                return seconds
        except (TypeError, ValueError):
            self.problem(key, f"must be a non-negative {kind}, got {value!r}")
            return None
        if kind.startswith("str"):
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                self.problem(key, f"must be a string, got {value!r}")
                return None
            return str(value)
        return value


def _kind(annotation: Any) -> str:
    # "float | None" reads as "float": a null in YAML means "use the default".
    name = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return str(name).removesuffix(" | None")


def load_settings(
    path: str | Path | None,
    environ: Mapping[str, str],
    *,
    host: str | None = None,
    port: int | None = None,
) -> Settings:
    """Build the frozen settings from a file (or none), the environment and CLI flags."""
    source = str(path) if path is not None else "<embedded default>"
    reader = _Reader(source, environ)
    document: dict[str, Any] = {}
    if path is not None:
        document = _read_yaml(Path(path), reader)
    document = reader.interpolate("", document) if document else {}
    for name, (section, key) in ENV_OVERRIDES.items():
        if name in environ:
            document.setdefault(section, {})
            if isinstance(document[section], dict):
                document[section][key] = environ[name]
                reader.overridden[f"{section}.{key}"] = name
    for key in document:
        if key not in _TOP_LEVEL:
            reader.problem(key, f"unknown top-level key; expected one of {sorted(_TOP_LEVEL)}")

    server_raw = reader.section("server", document.get("server"))
    server_kwargs = reader.dataclass_fields("server", server_raw, ServerSettings)
    if host is not None:
        server_kwargs["host"] = host
    if port is not None:
        server_kwargs["port"] = port
    server = ServerSettings(**server_kwargs)

    data_dir = Path(str(document.get("data_dir") or environ.get("SEAWALL_DATA_DIR") or ".seawall"))
    stores_raw = reader.section("stores", document.get("stores"))
    stores_kwargs = reader.dataclass_fields("stores", stores_raw, StoreSettings)
    stores_kwargs.setdefault("database_url", f"sqlite:///{data_dir / 'seawall.db'}")
    if stores_kwargs.get("redis_url") in ("", "memory"):
        stores_kwargs["redis_url"] = None
    _check_store_urls(reader, stores_kwargs)
    flush = stores_kwargs.get("record_flush_seconds", 0.5)
    if not 0 < flush <= 1:
        # The ledger promises that SIGKILL loses at most one flush interval: a second.
        reader.problem("stores.record_flush_seconds", "must be more than 0 and at most 1")
    stores = StoreSettings(**stores_kwargs)

    deployments = _deployments(reader, document, environ)
    models = _models(reader, document, deployments)
    resilience = _resilience(reader, document.get("resilience"))
    tenancy = read_tenancy(reader, document.get("tenancy"), set(models))
    cache = _cache(reader, document.get("cache"))
    monitoring = _monitoring(reader, document.get("monitoring"))
    guard = read_guard(reader, document.get("guard"), set(models), set(tenancy.tiers))
    master_key = document.get("master_key") or environ.get("SEAWALL_MASTER_KEY") or None
    if master_key is not None and len(str(master_key)) < 16:
        reader.problem("master_key", "must be at least 16 characters long")

    if reader.problems:
        raise ConfigError(reader.problems)
    return Settings(
        server=server,
        stores=stores,
        data_dir=data_dir,
        master_key=str(master_key) if master_key else None,
        deployments=deployments,
        models=models,
        resilience=resilience or ResilienceSettings(),
        tenancy=tenancy,
        cache=cache or CacheSettings(),
        monitoring=monitoring or MonitoringSettings(),
        guard=guard,
        source=source,
    )


def _with_sections(
    reader: _Reader, key: str, raw: Any, cls: type[_T], sections: Mapping[str, type[Any]]
) -> _T | None:
    """A settings value whose ``sections`` are settings values of their own."""
    spec = dict(reader.section(key, raw))
    nested: dict[str, Any] = {}
    for section, section_cls in sections.items():
        if section in spec:
            value = reader.build(f"{key}.{section}", section_cls, spec.pop(section))
            if value is not None:
                nested[section] = value
    return reader.build(key, cls, spec, **nested)


def _cache(reader: _Reader, raw: Any) -> CacheSettings | None:
    settings = _with_sections(reader, "cache", raw, CacheSettings, {"semantic": SemanticSettings})
    if settings is None:
        return None
    for name in ("ttl_seconds", "max_entries", "max_bytes", "invalidation_refresh_seconds"):
        if getattr(settings, name) <= 0:
            reader.problem(f"cache.{name}", "must be more than 0")
    return settings


def _monitoring(reader: _Reader, raw: Any) -> MonitoringSettings | None:
    sections = {"tracing": TracingSettings, "logs": LogSettings, "quality": QualitySettings}
    return _with_sections(reader, "monitoring", raw, MonitoringSettings, sections)


def _resilience(reader: _Reader, raw: Any) -> ResilienceSettings | None:
    sections = {
        "backoff": Backoff,
        "retry_budget": RetryBudgetSettings,
        "breaker": BreakerSettings,
        "admission": AdmissionSettings,
    }
    settings = _with_sections(reader, "resilience", raw, ResilienceSettings, sections)
    if settings is not None and settings.max_attempts < 1:
        reader.problem("resilience.max_attempts", "must be at least 1")
    return settings


def _read_yaml(path: Path, reader: _Reader) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        reader.problems.append(f"{path}: cannot read the file: {exc.strerror or exc}")
        raise ConfigError(reader.problems) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        reader.problems.append(f"{path}: not valid YAML: {exc}")
        raise ConfigError(reader.problems) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        reader.problems.append(f"{path}: the file must hold a mapping at the top level")
        raise ConfigError(reader.problems)
    return document


def _check_store_urls(reader: _Reader, stores: dict[str, Any]) -> None:
    database = str(stores.get("database_url", ""))
    if not database.startswith(("sqlite://", "postgresql://", "postgres://")):
        reader.problem("stores.database_url", "must start with sqlite:/// or postgresql://")
    redis_url = stores.get("redis_url")
    if redis_url is not None and not str(redis_url).startswith(("redis://", "rediss://")):
        reader.problem("stores.redis_url", "must be 'memory' or start with redis:// or rediss://")
    elif redis_url is not None:
        try:
            Endpoint.from_url(str(redis_url))
        except ValueError as error:
            reader.problem("stores.redis_url", str(error))


def _deployments(
    reader: _Reader, document: dict[str, Any], environ: Mapping[str, str]
) -> dict[str, Deployment]:
    found: list[Deployment] = []
    if document.get("local_models", True) is not False:
        found.extend(local_deployments())
    if "deployments" not in document:
        found.extend(provider_deployments(environ))
    raw = reader.section("deployments", document.get("deployments"))
    for name, spec in raw.items():
        deployment = _deployment(reader, f"deployments.{name}", str(name), spec)
        if deployment is not None:
            found.append(deployment)
    return {deployment.name: deployment for deployment in found}


def _deployment(reader: _Reader, key: str, name: str, spec: Any) -> Deployment | None:
    spec = reader.section(key, spec)
    spec = dict(spec)
    nested: dict[str, Any] = {}
    for section, cls in (("prices", Prices), ("timeouts", Timeouts), ("limits", RateLimits)):
        if section in spec:
            value = reader.build(f"{key}.{section}", cls, spec.pop(section))
            if value is not None:
                nested[section] = value
    kwargs = reader.dataclass_fields(key, spec, Deployment)
    kwargs.pop("name", None)
    provider = kwargs.get("provider")
    if provider not in _PROVIDERS:
        reader.problem(f"{key}.provider", f"must be one of {list(_PROVIDERS)}, got {provider!r}")
        return None
    model = kwargs.get("model")
    if not model:
        reader.problem(f"{key}.model", "is required (the model name the upstream expects)")
        return None
    operation = kwargs.get("operation") or (
        "embeddings" if provider == "local-embedding" or "embed" in str(model) else "chat"
    )
    if operation not in _OPERATIONS:
        reader.problem(f"{key}.operation", f"must be one of {list(_OPERATIONS)}")
        return None
    api_base = kwargs.get("api_base")
    if api_base is not None and not str(api_base).startswith(("http://", "https://")):
        reader.problem(f"{key}.api_base", f"must be an http:// or https:// URL, got {api_base!r}")
    kwargs["operation"] = operation
    if kwargs.get("weight", 1.0) <= 0:
        reader.problem(f"{key}.weight", "must be greater than 0")
    if kwargs.get("api_key") == "":
        kwargs["api_key"] = None
    return Deployment(name=name, **kwargs, **nested)


def _models(
    reader: _Reader, document: dict[str, Any], deployments: dict[str, Deployment]
) -> dict[str, PublicModel]:
    raw = reader.section("models", document.get("models"))
    if not raw:
        return one_to_one_models(list(deployments.values()))
    models = one_to_one_models(
        [d for d in deployments.values() if d.provider in ("local-llama", "local-embedding")]
    )
    for name, spec in raw.items():
        key = f"models.{name}"
        if is_router(spec):
            router = read_router(reader, key, str(name), spec)
            if router is not None:
                models[str(name)] = router
            continue
        if isinstance(spec, list):
            spec = {"deployments": spec}
        spec = reader.section(key, spec)
        names = spec.get("deployments")
        if not isinstance(names, list) or not names:
            reader.problem(f"{key}.deployments", "must be a non-empty list of deployment names")
            continue
        missing = [str(n) for n in names if n not in deployments]
        if missing:
            reader.problem(
                f"{key}.deployments", f"unknown deployment(s) {missing}; define them first"
            )
            continue
        operations = {deployments[n].operation for n in names}
        if len(operations) > 1:
            reader.problem(f"{key}.deployments", "mixes chat and embedding deployments")
            continue
        strategy = spec.get("strategy", "ordered")
        if strategy not in _STRATEGIES:
            reader.problem(f"{key}.strategy", f"must be one of {list(_STRATEGIES)}")
            continue
        models[str(name)] = PublicModel(
            name=str(name),
            deployments=tuple(str(n) for n in names),
            operation=operations.pop(),
            owned_by=str(spec.get("owned_by", "seawall")),
            strategy=strategy,
            fallbacks=_model_names(reader, f"{key}.fallbacks", spec.get("fallbacks", [])),
            context_fallback=spec.get("context_fallback"),
        )
    check_routers(reader, models)
    _check_fallbacks(reader, models)
    return models


def _model_names(reader: _Reader, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        reader.problem(key, "must be a list of public model names")
        return ()
    return tuple(value)


def _check_fallbacks(reader: _Reader, models: dict[str, PublicModel]) -> None:
    """Fallbacks name existing models of the same operation, never the model itself."""
    for name, model in models.items():
        targets = [("fallbacks", target) for target in model.fallbacks]
        if model.context_fallback is not None:
            targets.append(("context_fallback", model.context_fallback))
        for field_name, target in targets:
            key = f"models.{name}.{field_name}"
            other = models.get(target)
            if other is None:
                reader.problem(key, f"unknown model {target!r}; define it under models first")
            elif target == name:
                reader.problem(key, "a model cannot fall back to itself")
            elif other.operation != model.operation:
                reader.problem(key, f"{target!r} serves {other.operation}, not {model.operation}")


def load_from_environment(
    path: str | Path | None = None, *, host: str | None = None, port: int | None = None
) -> Settings:
    """Settings from the process environment; the file defaults to ``$SEAWALL_CONFIG``."""
    environ = dict(os.environ)
    return load_settings(
        path or environ.get("SEAWALL_CONFIG") or None, environ, host=host, port=port
    )
