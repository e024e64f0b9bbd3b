"""The ``monitoring:`` section: metrics, traces, logs and quality signals."""

from __future__ import annotations

from dataclasses import dataclass, field

LOG_FORMATS = ("json", "text")


@dataclass(frozen=True, slots=True)
class TracingSettings:
    """OpenTelemetry traces, exported over OTLP/HTTP; off unless an endpoint is set."""

    # Where spans go, e.g. http://127.0.0.1:4318/v1/traces. None: no tracing at all.
    otlp_endpoint: str | None = None
    # Share of requests traced; server errors (5xx) always are, and a caller's
    # traceparent decides for its own requests.
    sampling_ratio: float = 0.02
    service_name: str = "seawall"

    def __post_init__(self) -> None:
        if not 0 <= self.sampling_ratio <= 1:
            raise ValueError("sampling_ratio must be between 0 and 1")


@dataclass(frozen=True, slots=True)
class LogSettings:
    """What Seawall writes to its log (stderr)."""

    # json: one JSON object per line, with the request id where there is one.
    format: str = "json"
    # One line per finished request (id, model, status, tokens, cost, latency).
    requests: bool = False
    # Also the prompt and answer text in those lines, secrets and personal data redacted.
    payloads: bool = False

    def __post_init__(self) -> None:
        if self.format not in LOG_FORMATS:
            raise ValueError(f"format must be one of {', '.join(LOG_FORMATS)}")


@dataclass(frozen=True, slots=True)
class QualitySettings:
    """Signals about the answers themselves."""

    # Detect refusals ("I can't help with that") in answers and count them.
    refusals: bool = True
    # A prompt of at least this many tokens counts as long context (error rates by input).
    long_context_tokens: int = 8192
    # A JSONL file of golden prompts and answers per model (docs/monitoring.md).
    golden_set: str | None = None
    # How often every golden prompt is sent and its answer compared.
    golden_interval_seconds: float = 3600.0
    # Share of live requests that match a golden prompt whose answer is compared too.
    golden_live_sample: float = 0.1

    def __post_init__(self) -> None:
        if self.long_context_tokens < 1:
            raise ValueError("long_context_tokens must be at least 1")
        if self.golden_interval_seconds <= 0:
            raise ValueError("golden_interval_seconds must be more than 0")
        if not 0 <= self.golden_live_sample <= 1:
            raise ValueError("golden_live_sample must be between 0 and 1")


@dataclass(frozen=True, slots=True)
class MonitoringSettings:
    """Prometheus metrics (``/metrics``), traces, logs and answer quality."""

    metrics: bool = True
    tracing: TracingSettings = field(default_factory=TracingSettings)
    logs: LogSettings = field(default_factory=LogSettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
