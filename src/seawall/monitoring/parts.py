"""Monitoring's parts, built from the ``monitoring:`` section: the observers of finished
requests, the state sampler and the golden set evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from seawall.cache.embedder import LocalEmbedder
from seawall.config import Settings
from seawall.monitoring.answer import Observer
from seawall.monitoring.golden import (
    GoldenAnswers,
    GoldenEvaluator,
    GoldenLiveSampler,
    load_golden_set,
)
from seawall.monitoring.metrics import MetricsRecorder
from seawall.monitoring.refusal import RefusalDetector
from seawall.monitoring.request_log import RequestLog
from seawall.monitoring.sampler import StateSampler
from seawall.pipeline.pipeline import Handler
from seawall.resilience.admission import Admission
from seawall.resilience.circuit_breaker import BreakerStore
from seawall.stores.record_writer import RecordWriter

if TYPE_CHECKING:
    from seawall.monitoring.tracing import RequestTracer


@dataclass(slots=True)
class Monitoring:
    """What watches the gateway; ``start`` once the pipeline exists, ``aclose`` at shutdown."""

    settings: Settings
    observers: list[Observer]
    golden: GoldenAnswers | None = None
    embedder: LocalEmbedder | None = None
    live: GoldenLiveSampler | None = None
    sampler: StateSampler | None = None
    evaluator: GoldenEvaluator | None = None
    # Exports traces (None: no OTLP endpoint configured).
    tracer: RequestTracer | None = None
    # Counts finished requests into the metrics (None: metrics are off).
    metrics: MetricsRecorder | None = None

    def start(
        self, admission: Admission, writer: RecordWriter, breakers: BreakerStore, evaluate: Handler
    ) -> None:
        """Begin sampling gauges (metrics on) and evaluating the golden set (one configured).

        ``evaluate`` answers the golden prompts: routed and recorded, never cached.
        """
        settings = self.settings
        if settings.monitoring.metrics:
            self.sampler = StateSampler(
                admission,
                writer,
                breakers,
                settings.resilience.breaker,
                list(settings.deployments),
                flush=self.flush_metrics,
            )
            self.sampler.start()
        if self.golden is not None:
            self.evaluator = GoldenEvaluator(
                self.golden,
                evaluate,
                settings.monitoring.quality.golden_interval_seconds,
                settings.data_dir / "golden.lock",
            )
            self.evaluator.start()

    def flush_metrics(self) -> None:
        """Bring the metrics up to date with every request finished (before a scrape)."""
        if self.metrics is not None:
            self.metrics.flush()

    async def aclose(self) -> None:
        """Stop sampling and evaluating; let live comparisons finish."""
        if self.sampler is not None:
            await self.sampler.aclose()
        if self.evaluator is not None:
            await self.evaluator.aclose()
        if self.live is not None:
            await self.live.aclose()
        if self.embedder is not None:
            await self.embedder.aclose()
        if self.tracer is not None:
            # Last: the golden requests just finished are traced too.
            await self.tracer.aclose()
        self.flush_metrics()


def build_monitoring(settings: Settings) -> Monitoring:
    """The observers, and the golden set when one is configured (read now: a bad file
    stops the start with a message naming its line)."""
    quality = settings.monitoring.quality
    monitoring = Monitoring(settings, [])
    if quality.golden_set is not None:
        items = load_golden_set(Path(quality.golden_set), list(settings.models))
        monitoring.embedder = LocalEmbedder()
        monitoring.golden = GoldenAnswers(items, monitoring.embedder)
        monitoring.live = GoldenLiveSampler(monitoring.golden, quality.golden_live_sample)
    monitoring.tracer = build_tracer(settings)
    if settings.monitoring.metrics:
        monitoring.metrics = MetricsRecorder(
            settings.models, long_context_tokens=quality.long_context_tokens
        )
    monitoring.observers = build_observers(
        settings, monitoring.live, monitoring.tracer, monitoring.metrics
    )
    return monitoring


def build_tracer(settings: Settings) -> RequestTracer | None:
    """The trace exporter, when ``monitoring.tracing.otlp_endpoint`` is set."""
    tracing = settings.monitoring.tracing
    if tracing.otlp_endpoint is None:
        return None
    # Imported only here: the OpenTelemetry SDK and exporter cost memory and start-up
    # time in every worker, for nothing when tracing is off.
    from seawall.monitoring.tracing import build_request_tracer

    return build_request_tracer(tracing)


def build_observers(
    settings: Settings,
    live: GoldenLiveSampler | None = None,
    tracer: RequestTracer | None = None,
    metrics: MetricsRecorder | None = None,
) -> list[Observer]:
    """What looks at every finished request, in order: annotators first, then exporters."""
    monitoring = settings.monitoring
    observers: list[Observer] = []
    if monitoring.quality.refusals:
        # First: it marks the record that the later observers (and the ledger) read.
        observers.append(RefusalDetector())
    if metrics is not None:
        observers.append(metrics)
    if monitoring.logs.requests:
        observers.append(RequestLog(payloads=monitoring.logs.payloads))
    if live is not None:
        observers.append(live)
    if tracer is not None:
        # After the annotators: a span carries what they marked (refusals).
        observers.append(tracer)
    return observers
