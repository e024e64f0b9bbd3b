"""The death-spiral benchmark's figures, their medians over runs, its bars and its table."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from typing import Any

from loadgen import percentile
from spiral_clients import ACCEPTABLE, CHAT_PATH, OUTCOMES, SUCCESS, Outcome, PhaseRecord

# The configurations of scenario A, in the order they run and print.
NAIVE = "a_naive_client_direct_to_upstream"
LEARNED = "b_seawall_rate_not_configured"
CONFIGURED_2X = "c_seawall_rpm_configured_at_2x_capacity"
SEAWALL_CONFIGS = (LEARNED, CONFIGURED_2X)
LABELS = {
    NAIVE: "(a) naive client, direct",
    LEARNED: "(b) seawall, rate learned",
    CONFIGURED_2X: "(c) seawall, rpm = 2x real",
}

# The bars.
MAX_AMPLIFICATION = 1.2
MAX_UPSTREAM_429_SHARE = 0.20
MIN_GOODPUT_FRACTION = 0.95
MAX_LAST_ATTEMPT_AFTER_DONE_S = 1.0
MAX_ADDED_P99_MS = 50.0
# Not a bar of the issue: figures from a generator that fell behind would be void.
MIN_GENERATOR_FRACTION = 0.99


def _ms(values: list[float]) -> dict[str, float | None]:
    # None rather than NaN when nothing was measured: NaN is not JSON.
    ordered = sorted(v * 1000 for v in values)
    if not ordered:
        return {"p50_ms": None, "p99_ms": None}
    return {"p50_ms": percentile(ordered, 50), "p99_ms": percentile(ordered, 99)}


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _chat_attempts(stats: dict[str, Any]) -> int:
    return int(stats["requests"].get(CHAT_PATH, 0))


def sending(record: PhaseRecord) -> dict[str, float]:
    """How well the generator kept to its schedule."""
    sends = sorted(o.sent for o in record.outcomes)
    span = sends[-1] - sends[0] if len(sends) > 1 else 0.0
    lag = sorted((o.sent - o.due) * 1000 for o in record.outcomes)
    return {
        "target_offered_rps": record.load.rate,
        "achieved_offered_rps": (len(sends) - 1) / span if span > 0 else 0.0,
        "send_lag_p99_ms": percentile(lag, 99),
    }


def client_outcomes(outcomes: list[Outcome]) -> dict[str, Any]:
    """How the client requests ended, and their latency from the due time."""
    kinds = Counter(o.kind for o in outcomes)
    counts: dict[str, Any] = {kind: kinds.get(kind, 0) for kind in OUTCOMES}
    ok = [o.done - o.due for o in outcomes if o.kind == SUCCESS]
    every = _ms([o.done - o.due for o in outcomes])
    return {
        "client_requests": len(outcomes),
        "client_outcomes": counts,
        "client_final_statuses": {
            str(s): n for s, n in sorted(Counter(o.status for o in outcomes if o.status).items())
        },
        "client_error_codes": dict(Counter(o.error_code for o in outcomes if o.error_code)),
        "client_success_share": kinds.get(SUCCESS, 0) / len(outcomes),
        "client_requests_not_success_or_refusal_with_retry_after": sum(
            n for kind, n in kinds.items() if kind not in ACCEPTABLE
        ),
        "client_latency_all_p50_ms": every["p50_ms"],
        "client_latency_all_p99_ms": every["p99_ms"],
        "client_latency_success_p50_ms": _ms(ok)["p50_ms"],
        "client_latency_success_p99_ms": _ms(ok)["p99_ms"],
        "client_side_attempts": sum(o.attempts for o in outcomes),
    }


def successes_by_second(record: PhaseRecord) -> list[int]:
    """Client successes per second of due time, so how fast a gateway adapted shows."""
    seconds = [0] * max(1, math.ceil(record.load.duration_s))
    for o in record.outcomes:
        if o.kind == SUCCESS:
            seconds[min(len(seconds) - 1, int(o.due - record.start))] += 1
    return seconds


def scenario_a_figures(record: PhaseRecord, capacity: float) -> dict[str, Any]:
    """One run of one scenario-A configuration, against the simulator named ``upstream``."""
    window = record.snapshots["window_end"]["upstream"]
    done = record.snapshots["clients_done"]["upstream"]
    settled = record.snapshots["settled"]["upstream"]
    attempts = _chat_attempts(settled)
    clients = client_outcomes(record.outcomes)
    successes_in_window = int(window["answered"].get("200", 0))
    last_attempt = settled["last_request_at"]
    figures: dict[str, Any] = {
        **sending(record),
        **clients,
        "upstream_attempts": attempts,
        "amplification": attempts / clients["client_requests"],
        "upstream_429s": settled["capacity_refusals"],
        "upstream_429_share": settled["capacity_refusals"] / attempts if attempts else 0.0,
        "upstream_successes_in_load_window": successes_in_window,
        "upstream_successes_total": int(settled["answered"].get("200", 0)),
        "goodput_rps": successes_in_window / record.load.duration_s,
        "goodput_fraction_of_capacity": successes_in_window / record.load.duration_s / capacity,
        "upstream_answers_by_status": settled["answered"],
        "clients_done_after_load_window_s": max(o.done for o in record.outcomes)
        - (record.start + record.load.duration_s),
        # Negative: the upstream's last attempt came before the last client finished.
        "upstream_last_attempt_after_clients_done_s": (
            None if last_attempt is None else last_attempt - record.last_done_wall
        ),
        "upstream_attempts_after_clients_done": attempts - _chat_attempts(done),
        "client_successes_by_due_second": successes_by_second(record),
        "cpu_cores_during_load": record.cpu_cores,
    }
    return figures


def scenario_b_figures(direct: PhaseRecord, seawall: PhaseRecord, skip_s: float) -> dict[str, Any]:
    """One run of scenario B: the failover load through Seawall against the same load direct."""

    def measured(record: PhaseRecord) -> list[Outcome]:
        return [o for o in record.outcomes if o.due - record.start >= skip_s and o.kind == SUCCESS]

    through, straight = (
        _ms([o.done - o.due for o in measured(seawall)]),
        _ms([o.done - o.due for o in measured(direct)]),
    )
    clients = client_outcomes(seawall.outcomes)
    plain = [
        o.due - seawall.start
        for o in seawall.outcomes
        if o.kind == SUCCESS and not o.fallback_header
    ]
    settled = seawall.snapshots["settled"]
    return {
        "seawall": {**sending(seawall), **clients},
        "direct_to_backup": {**sending(direct), **client_outcomes(direct.outcomes)},
        "success_share_through_seawall": clients["client_success_share"],
        "requests_with_fallback_header": sum(o.fallback_header for o in seawall.outcomes),
        "requests_with_fallback_header_after_skip": sum(
            o.fallback_header for o in seawall.outcomes if o.due - seawall.start >= skip_s
        ),
        # The breaker skips the primary from here on: answers stop naming a fallback.
        "first_success_without_fallback_header_due_at_s": min(plain) if plain else None,
        "primary_attempts": _chat_attempts(settled["primary"]),
        "backup_attempts": _chat_attempts(settled["backup"]),
        "measured_requests_seawall": len(measured(seawall)),
        "measured_requests_direct": len(measured(direct)),
        "seawall_p50_ms": through["p50_ms"],
        "seawall_p99_ms": through["p99_ms"],
        "direct_p50_ms": straight["p50_ms"],
        "direct_p99_ms": straight["p99_ms"],
        "added_p50_ms": _minus(through["p50_ms"], straight["p50_ms"]),
        "added_p99_ms": _minus(through["p99_ms"], straight["p99_ms"]),
        "cpu_cores_during_load": seawall.cpu_cores,
    }


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every number over runs, nested dictionaries included.

    A count missing from a run's dictionary is 0 there; a figure that is None
    (not measurable in that run) is left out; series stay with the runs only.
    """
    out: dict[str, Any] = {}
    keys = list(dict.fromkeys(k for run in runs for k in run))
    for key in keys:
        values = [run.get(key, 0) for run in runs]
        if any(isinstance(v, list) for v in values):
            continue  # a series (e.g. per second) stays in the runs
        if any(isinstance(v, dict) for v in values):
            out[key] = medians([v for v in values if isinstance(v, dict)])
            continue
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        out[key] = statistics.median(numbers) if numbers else None
    return out


def _bar(
    value: float | None, limit: float, sense: str, *, none_meets: bool = False
) -> dict[str, Any]:
    met = none_meets if value is None else (value <= limit if sense == "<=" else value >= limit)
    return {"value": value, "limit": f"{sense} {limit:g}", "met": met}


def scenario_a_bars(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The bars of one Seawall configuration (medians, except outcomes: summed over runs)."""
    median = config["median"]
    bad = sum(r["client_requests_not_success_or_refusal_with_retry_after"] for r in config["runs"])
    return {
        "amplification": _bar(median["amplification"], MAX_AMPLIFICATION, "<="),
        "upstream_429_share": _bar(median["upstream_429_share"], MAX_UPSTREAM_429_SHARE, "<="),
        "goodput_fraction_of_capacity": _bar(
            median["goodput_fraction_of_capacity"], MIN_GOODPUT_FRACTION, ">="
        ),
        "client_requests_not_success_or_refusal_with_retry_after_all_runs": _bar(bad, 0, "<="),
        # None: the upstream saw no attempt at all, so none came late.
        "upstream_last_attempt_after_clients_done_s": _bar(
            median["upstream_last_attempt_after_clients_done_s"],
            MAX_LAST_ATTEMPT_AFTER_DONE_S,
            "<=",
            none_meets=True,
        ),
    }


def scenario_b_bars(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Scenario B's bars: every request answered (all runs), added p99 (median of runs)."""
    runs = summary["runs"]
    ok = sum(r["seawall"]["client_outcomes"][SUCCESS] for r in runs)
    sent = sum(r["seawall"]["client_requests"] for r in runs)
    return {
        "success_share_through_seawall_all_runs": _bar(ok / sent, 1.0, ">="),
        "added_p99_ms": _bar(summary["median"]["added_p99_ms"], MAX_ADDED_P99_MS, "<="),
    }


def generator_bar(report: dict[str, Any]) -> dict[str, Any]:
    """Whether the generator offered its target rate in every phase (else figures are void)."""
    fractions = [
        run["achieved_offered_rps"] / run["target_offered_rps"]
        for by_config in report["scenario_a"].values()
        for config in by_config.values()
        for run in config["runs"]
    ]
    for run in report["scenario_b"]["runs"]:
        for side in ("seawall", "direct_to_backup"):
            fractions.append(run[side]["achieved_offered_rps"] / run[side]["target_offered_rps"])
    return _bar(min(fractions), MIN_GENERATOR_FRACTION, ">=")


def _mark(bar: dict[str, Any] | None) -> str:
    return "" if bar is None else (" PASS" if bar["met"] else " FAIL")


def _cell(
    value: float | None,
    pattern: str = "{:.1f}",
    bar: dict[str, Any] | None = None,
    width: int = 0,
) -> str:
    shown = "n/a" if value is None else pattern.format(value)
    return f"{shown + _mark(bar):>{width}s}"


# Scenario A's columns: heading, width, the median's figure, its format, the bar beside it.
_COLUMNS = (
    ("amplif.", 10, "amplification", "{:.2f}", "amplification"),
    ("429 share", 10, "upstream_429_share", "{:.0%}", "upstream_429_share"),
    ("goodput/C", 10, "goodput_fraction_of_capacity", "{:.0%}", "goodput_fraction_of_capacity"),
    (
        "bad",
        9,
        "client_requests_not_success_or_refusal_with_retry_after",
        "{:.0f}",
        "client_requests_not_success_or_refusal_with_retry_after_all_runs",
    ),
    (
        "last try after",
        15,
        "upstream_last_attempt_after_clients_done_s",
        "{:+.2f}s",
        "upstream_last_attempt_after_clients_done_s",
    ),
)


def _scenario_a_table(capacity: str, by_config: dict[str, Any], settings: dict[str, Any]) -> None:
    print(
        f"\nScenario A: upstream capacity {capacity} req/s (burst {float(capacity) / 10:g}), "
        f"offered {2 * float(capacity):g} req/s open loop for {settings['duration_s']:g} s; "
        f"median of {settings['runs']} run(s)"
    )
    head = [f"{'configuration':28s}", f"{'sent/s':>7s}"]
    head += [f"{title:>{width}s}" for title, width, *_ in _COLUMNS]
    head += [f"{'ok':>6s}", f"{'RA-refused':>10s}", f"{'p50 / p99 ms':>15s}", "tries after"]
    print(" ".join(head))
    for name, config in by_config.items():
        median, bars = config["median"], config.get("bars", {})
        outcomes = median["client_outcomes"]
        refused = outcomes["429_with_retry_after"] + outcomes["503_with_retry_after"]
        row = [f"{LABELS[name]:28s}", f"{median['achieved_offered_rps']:7.1f}"]
        row += [
            _cell(median[figure], pattern, bars.get(bar), width)
            for _, width, figure, pattern, bar in _COLUMNS
        ]
        latency = f"{median['client_latency_all_p50_ms']:.0f} / "
        latency += f"{median['client_latency_all_p99_ms']:.0f}"
        row += [f"{outcomes['success']:6.0f}", f"{refused:10.0f}", f"{latency:>15s}"]
        row.append(f"{median['upstream_attempts_after_clients_done']:11.0f}")
        print(" ".join(row))


def print_table(report: dict[str, Any]) -> None:
    """The figures as a plain-text table, with PASS/FAIL next to each bar's figure."""
    settings = report["settings"]
    for capacity, by_config in report["scenario_a"].items():
        _scenario_a_table(capacity, by_config, settings)
    b = report["scenario_b"]
    median, bars = b["median"], b["bars"]
    print(
        f"\nScenario B: primary always 503, backup healthy; {settings['b_rate_rps']:g} req/s "
        f"for {settings['b_duration_s']:g} s, latency measured after the first "
        f"{settings['b_skip_s']:g} s; median of {settings['runs']} run(s)"
    )
    success = median["success_share_through_seawall"]
    print(
        f"  success through seawall "
        f"{_cell(success, '{:.1%}', bars['success_share_through_seawall_all_runs'])}; "
        f"answers naming a fallback {median['requests_with_fallback_header']:.0f} "
        f"({median['requests_with_fallback_header_after_skip']:.0f} after the skip); "
        f"primary attempts {median['primary_attempts']:.0f}"
    )
    added = _cell(median["added_p99_ms"], "{:.1f} ms", bars["added_p99_ms"])
    direct = f"{_cell(median['direct_p50_ms'])} / {_cell(median['direct_p99_ms'])}"
    seawall = f"{_cell(median['seawall_p50_ms'])} / {_cell(median['seawall_p99_ms'])}"
    print(f"  p50 / p99 ms: direct {direct}, seawall {seawall}; added p99 {added}")
    kept = report["generator_kept_up"]
    print(
        f"\ngenerator kept up: worst achieved / target offered rate {kept['value']:.3f} "
        f"({kept['limit']}){_mark(kept)}; all bars met: {report['all_bars_met']}"
    )
