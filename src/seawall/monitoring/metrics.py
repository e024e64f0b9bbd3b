"""Prometheus metrics of every finished request, named after OpenTelemetry's GenAI conventions.

Metrics are taken from the request record (``MetricsRecorder`` sits in front of the
record writer), so every accepted request counts once, success or failure, streams
when they end. Names and labels follow the GenAI semantic conventions where they
have one, with dots as underscores:

* ``gen_ai_client_operation_duration_seconds`` (histogram): end-to-end duration;
* ``gen_ai_client_token_usage`` (histogram, ``gen_ai_token_type`` input or output);
* ``gen_ai_server_time_to_first_token_seconds`` (histogram, streams);
* ``seawall_requests_total``: requests by HTTP status and cache result;
* ``seawall_cost_usd_total``: spend by model, deployment and tenant;
* ``seawall_upstream_retries_total``: upstream attempts beyond the first;
* ``seawall_feedback_score`` (histogram): end users' feedback per model and deployment.

Labels are bounded: ``gen_ai_operation_name`` is chat, embeddings or messages;
``gen_ai_request_model`` is a configured public model or ``unknown`` (a client's
misspelt model name never becomes a label); deployments, providers, error types,
statuses and cache results come from configuration or from Seawall itself; tenants
are the operator's. No user, prompt, key or request id is ever a label.

With several worker processes the values are kept in shared files
(``prometheus_client``'s multiprocess mode, set up by ``seawall serve``), so a scrape
of any worker reports the whole server.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Histogram

from seawall.pipeline.record import RecordSink
from seawall.stores.feedback import Feedback, Rated
from seawall.stores.records import RequestRecord

_MODEL_LABELS = ("gen_ai_operation_name", "gen_ai_request_model", "seawall_deployment")
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576)

DURATION = Histogram(
    "gen_ai_client_operation_duration_seconds",
    "Duration of a GenAI operation through Seawall, from arrival to the last byte.",
    [*_MODEL_LABELS, "gen_ai_provider_name", "error_type"],
    buckets=_DURATION_BUCKETS,
)
TOKENS = Histogram(
    "gen_ai_client_token_usage",
    "Tokens used per request, input (prompt) or output (completion).",
    [*_MODEL_LABELS, "gen_ai_provider_name", "gen_ai_token_type"],
    buckets=_TOKEN_BUCKETS,
)
FIRST_TOKEN = Histogram(
    "gen_ai_server_time_to_first_token_seconds",
    "Time from a streaming request's arrival to its first chunk.",
    list(_MODEL_LABELS),
    buckets=_DURATION_BUCKETS,
)
REQUESTS = Counter(
    "seawall_requests",
    "Requests finished, by HTTP status and cache result.",
    [*_MODEL_LABELS, "http_status_code", "seawall_cache"],
)
COST = Counter(
    "seawall_cost_usd",
    "Spend in US dollars, by model, deployment and tenant.",
    ["gen_ai_request_model", "seawall_deployment", "seawall_tenant"],
)
RETRIES = Counter(
    "seawall_upstream_retries",
    "Upstream attempts beyond a request's first (retries and fallbacks).",
    list(_MODEL_LABELS),
)

_UNKNOWN = "unknown"


class MetricsRecorder:
    """A ``RecordSink`` that updates the metrics, then hands the record on."""

    def __init__(self, sink: RecordSink, models: Iterable[str]) -> None:
        self._sink = sink
        self._models = frozenset(models)
        # Labelled children by label values: labels() costs more than the update.
        self._children: dict[tuple[str | None, ...], _Children] = {}

    def submit(self, record: RequestRecord) -> None:
        """Count the finished request, then submit it to the wrapped sink."""
        self.observe(record)
        self._sink.submit(record)

    def observe(self, record: RequestRecord) -> None:
        """Update every metric from one record."""
        # The model as labelled: a client's made-up names must not grow this cache either.
        model = record.public_model if record.public_model in self._models else _UNKNOWN
        key = (
            record.operation,
            record.protocol,
            model,
            record.deployment,
            record.provider,
            record.error_type,
            str(record.status_code),
            record.cache,
            record.tenant_id,
        )
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = _Children(record, model)
        children.duration.observe(record.latency_ms / 1000.0)
        children.input_tokens.observe(record.prompt_tokens)
        children.output_tokens.observe(record.completion_tokens)
        children.requests.inc()
        if record.cost_usd:
            children.cost.inc(record.cost_usd)
        if record.ttfb_ms is not None and record.stream:
            children.first_token.observe(record.ttfb_ms / 1000.0)
        if record.attempts and "," in record.attempts:
            children.retries.inc(record.attempts.count(","))


class _Children:
    """The labelled metrics one kind of record updates."""

    __slots__ = (
        "cost",
        "duration",
        "first_token",
        "input_tokens",
        "output_tokens",
        "requests",
        "retries",
    )

    def __init__(self, record: RequestRecord, model: str) -> None:
        operation = "messages" if record.protocol == "anthropic" else record.operation
        deployment = record.deployment or ""
        provider = record.provider or ""
        base = (operation, model, deployment)
        self.duration = DURATION.labels(*base, provider, record.error_type or "")
        self.input_tokens = TOKENS.labels(*base, provider, "input")
        self.output_tokens = TOKENS.labels(*base, provider, "output")
        self.first_token = FIRST_TOKEN.labels(*base)
        self.requests = REQUESTS.labels(*base, str(record.status_code), record.cache or "")
        self.cost = COST.labels(model, deployment, record.tenant_id or "")
        self.retries = RETRIES.labels(*base)


FEEDBACK = Histogram(
    "seawall_feedback_score",
    "End users' feedback scores (0 bad to 1 good; thumbs up 1, down 0) per model.",
    ["gen_ai_request_model", "seawall_deployment"],
    buckets=(0.0, 0.25, 0.5, 0.75, 1.0),
)


class FeedbackMetrics:
    """Exports each feedback received as a score of the model and deployment rated."""

    def __init__(self, models: Iterable[str]) -> None:
        self._models = frozenset(models)

    def observe(self, rated: Rated, given: Feedback) -> None:
        """Count one feedback on a request of ``rated``."""
        model = rated.model if rated.model in self._models else _UNKNOWN
        FEEDBACK.labels(model, rated.deployment or "").observe(given.score)
