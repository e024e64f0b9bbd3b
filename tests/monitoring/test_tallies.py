"""Tallied metric updates reach the exposition exactly as updates made one by one."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from seawall.monitoring.tallies import CounterTally, HistogramTally

BUCKETS = (0.01, 0.1, 1.0, 10.0)
# On a bound, between bounds, past the last bound, zero.
VALUES = [0.01, 0.05, 0.1, 0.5, 3.0, 10.0, 42.0, 0.0, 0.05]


def exposition(tallied: bool) -> bytes:
    registry = CollectorRegistry()
    histogram = Histogram("wait_seconds", "w", ["route"], buckets=BUCKETS, registry=registry)
    counter = Counter("calls", "c", ["route"], registry=registry)
    if tallied:
        waits = HistogramTally(histogram.labels("a"))
        calls = CounterTally(counter.labels("a"))
        for value in VALUES[:4]:
            waits.observe(value)
            calls.inc(2)
        waits.flush()
        calls.flush()
        for value in VALUES[4:]:
            waits.observe(value)
            calls.inc(2)
        waits.flush()
        calls.flush()
        waits.flush()  # nothing new: changes nothing
    else:
        for value in VALUES:
            histogram.labels("a").observe(value)
            counter.labels("a").inc(2)
    return b"\n".join(
        line for line in generate_latest(registry).splitlines() if b"_created" not in line
    )


def test_flushed_tallies_expose_the_same_buckets_sum_and_count_as_direct_updates() -> None:
    assert exposition(tallied=True) == exposition(tallied=False)
    assert b'wait_seconds_bucket{le="0.1",route="a"} 5.0' in exposition(tallied=True)


def test_nothing_reaches_the_metric_before_a_flush() -> None:
    registry = CollectorRegistry()
    counter = Counter("calls", "c", registry=registry)
    tally = CounterTally(counter)
    tally.inc(3)
    assert registry.get_sample_value("calls_total") == 0.0
    tally.flush()
    assert registry.get_sample_value("calls_total") == 3.0
