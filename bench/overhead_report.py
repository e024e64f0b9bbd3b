"""The overhead benchmark's bars and its printed table."""

from __future__ import annotations

from typing import Any

# The bars: at 200 req/s, at concurrency 32, per worker.
ADDED_P50_MS_AT_200 = 1.0
# With keys, client limits and budgets on, Redis-backed (issue 4).
TENANCY_ADDED_P50_MS_AT_200 = 1.5
ADDED_P99_MS_AT_200 = 5.0
MIN_RPS_AT_32 = 3000.0
MAX_RSS_MIB = 150.0
MAX_RSS_GROWTH_PERCENT = 10.0
MIN_GENERATOR_FRACTION = 0.99


def bars(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each bar with the measured value and whether it is met."""
    at_200 = report["fixed_rate"].get("200", {})
    at_32 = report["max_throughput"].get("32", {})
    memory = report["memory"]
    last = memory["checkpoints"][-1]
    peak = memory[f"max_rss_mib_at_{last}"]
    growth = memory["max_growth_percent"]
    if report.get("tenancy"):
        # Issue 4's bar: keys, limits and budgets on, Redis-backed.
        added = at_200.get("added_p50_ms")
        met = added is not None and added <= TENANCY_ADDED_P50_MS_AT_200
        return {
            "tenancy_added_p50_ms_at_200_rps": {
                "value": added,
                "limit": f"<= {TENANCY_ADDED_P50_MS_AT_200:g}",
                "met": met,
            },
            **_generator_bar(report),
        }
    checks = [
        ("added_p50_ms_at_200_rps", at_200.get("added_p50_ms"), ADDED_P50_MS_AT_200, "<="),
        ("added_p99_ms_at_200_rps", at_200.get("added_p99_ms"), ADDED_P99_MS_AT_200, "<="),
        ("seawall_rps_at_c32", at_32.get("seawall_rps"), MIN_RPS_AT_32, ">="),
        ("rss_mib_per_worker", peak, MAX_RSS_MIB, "<="),
        ("rss_growth_percent_20k_to_100k", growth, MAX_RSS_GROWTH_PERCENT, "<="),
    ]
    out: dict[str, dict[str, Any]] = {}
    for name, value, limit, sense in checks:
        met = value is not None and (value <= limit if sense == "<=" else value >= limit)
        out[name] = {"value": value, "limit": f"{sense} {limit:g}", "met": met}
    return {**out, **_generator_bar(report)}


def _generator_bar(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    # Not a bar of the issue: figures from a generator that fell behind would be void.
    worst = min(
        row[f"{target}_achieved_send_rate"] / float(rate)
        for rate, row in report["fixed_rate"].items()
        for target in ("direct", "seawall")
    )
    return {
        "generator_kept_up_fraction_of_target_rate": {
            "value": worst,
            "limit": f">= {MIN_GENERATOR_FRACTION:g}",
            "met": worst >= MIN_GENERATOR_FRACTION,
        }
    }


def print_table(report: dict[str, Any]) -> None:
    """The figures as a plain-text table."""
    pins = report["cpu_pinning"]
    print(
        f"\nSeawall overhead ({report['seawall_workers']} worker(s), pinning: "
        f"seawall {pins['seawall']}, simulator {pins['simulator']}, "
        f"load {pins['load_generators']}; median of {report['runs']} runs)"
    )
    print(f"{'':24s} {'direct':>14s} {'seawall':>14s} {'added':>14s}  sent/s (seawall)")
    print(f"{'':24s} {'p50 / p99 ms':>14s} {'p50 / p99 ms':>14s} {'p50 / p99 ms':>14s}")
    for rate, row in report["fixed_rate"].items():
        _latency_row(f"{rate} req/s", row)
    if "streaming_first_byte" in report:
        _latency_row("stream, first data:", report["streaming_first_byte"])
    print(f"\n{'max throughput (wrk)':24s} {'direct':>10s} {'seawall':>10s} {'seawall p99':>12s}")
    for conns, row in report["max_throughput"].items():
        print(
            f"{'c' + conns:24s} {row['direct_rps']:10.0f} {row['seawall_rps']:10.0f} "
            f"{row['seawall_p99_ms']:10.1f}ms"
        )
    memory = report["memory"]
    print("\nRSS of the largest worker (MiB)")
    for key, value in memory.items():
        if key.startswith("max_rss_mib_at_"):
            print(f"  at request {key.removeprefix('max_rss_mib_at_'):>7s}: {value:.1f}")
    runs = ", ".join(f"{g:.1f}%" for g in memory["max_growth_percent_per_run"])
    first, last = memory["checkpoints"][0], memory["checkpoints"][-1]
    print(f"  largest growth {first} -> {last}: {memory['max_growth_percent']:.1f}% (runs: {runs})")
    print("\nbars")
    for name, bar in report["bars"].items():
        value = bar["value"]
        shown = "n/a" if value is None else f"{value:.2f}"
        verdict = "met" if bar["met"] else "NOT MET"
        print(f"  {name:42s} {shown:>9s} {bar['limit']:>8s}  {verdict}")


def _latency_row(label: str, row: dict[str, Any]) -> None:
    print(
        f"{label:24s} {_pair(row, 'direct'):>14s} {_pair(row, 'seawall'):>14s} "
        f"{_pair(row, 'added'):>14s}  {row['seawall_achieved_send_rate']:7.1f}"
    )


def _pair(row: dict[str, Any], prefix: str) -> str:
    return f"{row[f'{prefix}_p50_ms']:.2f} / {row[f'{prefix}_p99_ms']:.2f}"
