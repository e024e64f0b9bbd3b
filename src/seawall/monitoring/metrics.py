"""Prometheus metrics of every finished request, named after OpenTelemetry's GenAI conventions.

Metrics are taken from each finished request (``MetricsRecorder`` is an observer of
the record stage), so every accepted request counts once, success or failure,
streams when they end. Names and labels follow the GenAI semantic conventions where
they have one, with dots as underscores:

* ``gen_ai_client_operation_duration_seconds`` (histogram): end-to-end duration;
* ``gen_ai_client_token_usage`` (histogram, ``gen_ai_token_type`` input or output);
* ``gen_ai_server_time_to_first_token_seconds`` (histogram, streams);
* ``gen_ai_server_time_per_output_token_seconds`` (histogram, streams): after the first;
* ``seawall_requests_total``: requests by HTTP status and cache result;
* ``seawall_requests_by_input_total``: requests by input type and error type;
* ``seawall_cost_usd_total``: spend by model, deployment and tenant;
* ``seawall_upstream_retries_total``: upstream attempts beyond the first;
* ``seawall_fallbacks_total``: answers from a deployment other than the first tried;
* ``seawall_shed_requests_total`` and ``seawall_budget_rejections_total``: refusals;
* ``seawall_budget_soft_limit_alerts_total``: budgets past their soft limit;
* ``seawall_queue_wait_seconds`` (histogram): the wait for an admission slot;
* ``seawall_refusals_total`` and ``seawall_answer_confidence``: answer quality;
* ``seawall_feedback_score`` (histogram): end users' feedback per model and deployment.

Gauges of the process's state (breakers, queue, spool, memory, event-loop lag) are
in ``monitoring.sampler``.

Labels are bounded: ``gen_ai_operation_name`` is chat, embeddings or messages;
``gen_ai_request_model`` is a configured public model or ``unknown`` (a client's
misspelt model name never becomes a label); deployments, providers, error types,
statuses and cache results come from configuration or from Seawall itself; tenants
are the operator's. No user, prompt, key or request id is ever a label.

Updates are tallied in plain Python and handed to these metrics at each scrape and
every half second (``monitoring.tallies``): a tenth of what ``prometheus_client``'s
own updates cost on the request path.

With several worker processes the values are kept in shared files
(``prometheus_client``'s multiprocess mode, set up by ``seawall serve``), so a scrape
of any worker reports the whole server.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from prometheus_client import Counter, Histogram

from seawall.monitoring.answer import Answer
from seawall.monitoring.tallies import CounterTally, HistogramTally
from seawall.pipeline.context import RequestContext
from seawall.stores.feedback import Feedback, Rated
from seawall.stores.records import RequestRecord

_MODEL_LABELS = ("gen_ai_operation_name", "gen_ai_request_model", "seawall_deployment")
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576)
_PER_TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.5)
_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_SHARE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)

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
PER_OUTPUT_TOKEN = Histogram(
    "gen_ai_server_time_per_output_token_seconds",
    "A stream's time per output token after the first: (end - first chunk) / (tokens - 1).",
    list(_MODEL_LABELS),
    buckets=_PER_TOKEN_BUCKETS,
)
REQUESTS = Counter(
    "seawall_requests",
    "Requests finished, by HTTP status and cache result.",
    [*_MODEL_LABELS, "http_status_code", "seawall_cache"],
)
BY_INPUT = Counter(
    "seawall_requests_by_input",
    "Requests by input type (tools, long_context, json_mode, streaming, plain) and "
    "error type (empty for success); a request of several types counts under each.",
    ["gen_ai_operation_name", "gen_ai_request_model", "seawall_input_type", "error_type"],
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
FALLBACKS = Counter(
    "seawall_fallbacks",
    "Requests answered by a deployment other than the first one tried.",
    list(_MODEL_LABELS),
)
SHED = Counter(
    "seawall_shed_requests",
    "Requests refused with 503 because this instance's queue was full or too slow.",
    ["gen_ai_operation_name"],
)
BUDGET_REJECTIONS = Counter(
    "seawall_budget_rejections",
    "Requests refused with 429 insufficient_quota because a hard budget was spent.",
    ["gen_ai_request_model", "seawall_tenant"],
)
BUDGET_SOFT_ALERTS = Counter(
    "seawall_budget_soft_limit_alerts",
    "Budgets that reached their soft limit (once per budget and window), by scope and tenant.",
    ["seawall_budget_scope", "seawall_tenant"],
)
QUEUE_WAIT = Histogram(
    "seawall_queue_wait_seconds",
    "Time a request waited for an admission slot in this instance.",
    ["gen_ai_operation_name"],
    buckets=_WAIT_BUCKETS,
)
REFUSALS = Counter(
    "seawall_refusals",
    'Answers that refused the request ("I can\'t help with that", a refusal field, '
    "a content filter).",
    list(_MODEL_LABELS),
)
CONFIDENCE = Histogram(
    "seawall_answer_confidence",
    "The geometric-mean token probability of an answer, when the provider returned logprobs.",
    ["gen_ai_request_model", "seawall_deployment"],
    buckets=_SHARE_BUCKETS,
)

_UNKNOWN = "unknown"
# Error types of the refusals counted on their own.
_SHED = "Overloaded"
_BUDGET = "BudgetExhausted"


class MetricsRecorder:
    """An observer of finished requests that updates the metrics."""

    def __init__(self, models: Iterable[str], *, long_context_tokens: int = 8192) -> None:
        self._models = frozenset(models)
        self._long_context = long_context_tokens
        # Tallies of labelled children by label values: labels() costs more than the update.
        self._children: dict[tuple[str | None, ...], _Children] = {}
        self._by_input: dict[tuple[str, str, str, str], CounterTally] = {}
        # Every tally made, for flush().
        self._tallies: list[HistogramTally | CounterTally] = []

    def flush(self) -> None:
        """Hand what was tallied since the last flush to the Prometheus metrics."""
        for tally in self._tallies:
            tally.flush()

    def finished(self, ctx: RequestContext, record: RequestRecord, answer: Answer | None) -> None:
        """Update every metric from one finished request."""
        children = self.observe(record)
        if ctx.queue_wait_s is not None:
            children.queue_wait.observe(ctx.queue_wait_s)
        for input_type in _input_types(ctx, self._long_context):
            self._input_child(children, input_type, record.error_type or "").inc()
        if answer is not None and answer.logprobs:
            mean = sum(answer.logprobs) / len(answer.logprobs)
            children.confidence.observe(math.exp(mean))

    def observe(self, record: RequestRecord) -> _Children:
        """Update the metrics a record alone tells; the labelled children it used."""
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
            self._tallies.extend(children.tallies())
        children.duration.observe(record.latency_ms / 1000.0)
        children.input_tokens.observe(record.prompt_tokens)
        children.output_tokens.observe(record.completion_tokens)
        children.requests.inc()
        if record.cost_usd:
            children.cost.inc(record.cost_usd)
        if record.ttfb_ms is not None and record.stream:
            children.first_token.observe(record.ttfb_ms / 1000.0)
            if record.completion_tokens > 1:
                generating = (record.latency_ms - record.ttfb_ms) / 1000.0
                children.per_output_token.observe(generating / (record.completion_tokens - 1))
        attempts = record.attempts
        if attempts and "," in attempts:
            children.retries.inc(attempts.count(","))
            if record.deployment and not attempts.startswith(record.deployment + ":"):
                children.fallbacks.inc()
        if record.refused:
            children.refusals.inc()
        if record.error_type == _SHED:
            children.shed.inc()
        elif record.error_type == _BUDGET:
            children.budget_rejections.inc()
        return children

    def _input_child(self, children: _Children, input_type: str, error_type: str) -> CounterTally:
        key = (children.operation, children.model, input_type, error_type)
        child = self._by_input.get(key)
        if child is None:
            child = self._by_input[key] = CounterTally(BY_INPUT.labels(*key))
            self._tallies.append(child)
        return child


def _input_types(ctx: RequestContext, long_context_tokens: int) -> list[str]:
    """The kinds of input a chat request is (tools, long context, JSON mode, streaming)."""
    if ctx.operation != "chat":
        return []
    body = ctx.body
    kinds = []
    if body.get("tools") or body.get("functions"):
        kinds.append("tools")
    if (ctx.prompt_tokens or 0) >= long_context_tokens:
        kinds.append("long_context")
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") in (
        "json_object",
        "json_schema",
    ):
        kinds.append("json_mode")
    if ctx.stream:
        kinds.append("streaming")
    return kinds or ["plain"]


class _Children:
    """The labelled metrics one kind of record updates."""

    __slots__ = (
        "budget_rejections",
        "confidence",
        "cost",
        "duration",
        "fallbacks",
        "first_token",
        "input_tokens",
        "model",
        "operation",
        "output_tokens",
        "per_output_token",
        "queue_wait",
        "refusals",
        "requests",
        "retries",
        "shed",
    )

    def __init__(self, record: RequestRecord, model: str) -> None:
        operation = "messages" if record.protocol == "anthropic" else record.operation
        deployment = record.deployment or ""
        provider = record.provider or ""
        base = (operation, model, deployment)
        tenant = record.tenant_id or ""
        self.operation = operation
        self.model = model
        self.duration = HistogramTally(DURATION.labels(*base, provider, record.error_type or ""))
        self.input_tokens = HistogramTally(TOKENS.labels(*base, provider, "input"))
        self.output_tokens = HistogramTally(TOKENS.labels(*base, provider, "output"))
        self.first_token = HistogramTally(FIRST_TOKEN.labels(*base))
        self.per_output_token = HistogramTally(PER_OUTPUT_TOKEN.labels(*base))
        self.requests = CounterTally(
            REQUESTS.labels(*base, str(record.status_code), record.cache or "")
        )
        self.cost = CounterTally(COST.labels(model, deployment, tenant))
        self.retries = CounterTally(RETRIES.labels(*base))
        self.fallbacks = CounterTally(FALLBACKS.labels(*base))
        self.refusals = CounterTally(REFUSALS.labels(*base))
        self.confidence = HistogramTally(CONFIDENCE.labels(model, deployment))
        self.shed = CounterTally(SHED.labels(operation))
        self.budget_rejections = CounterTally(BUDGET_REJECTIONS.labels(model, tenant))
        self.queue_wait = HistogramTally(QUEUE_WAIT.labels(operation))

    def tallies(self) -> list[HistogramTally | CounterTally]:
        """Every tally of this kind of record."""
        return [
            getattr(self, name) for name in self.__slots__ if name not in ("model", "operation")
        ]


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
