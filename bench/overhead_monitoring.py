"""What monitoring costs: metrics and tracing on against everything off, runs interleaved.

Issue 6's bar, on ``bench/overhead.py``'s stack (the simulator at zero latency and
``seawall serve`` with the full pipeline and the SQLite record writer, each its own
process on 127.0.0.1) and load generators. Two Seawalls run side by side, one worker
each, so each one's CPU time is its own:

* ``off``: ``monitoring: {metrics: false, quality: {refusals: false}}``: no metrics,
  no state sampler, no refusal detection, no tracing;
* ``on``: the defaults (metrics, state sampler, refusal detection) plus tracing with
  the default sampling ratio (0.02), exported over OTLP/HTTP to a receiver on loopback
  (``otlp_sink.py``, its own process).

Each run measures, alternating which Seawall goes first:

* added latency p50 at ``--rate`` requests per second (open loop, ``loadgen.py``):
  the percentile through each Seawall minus the direct percentile of the same run;
* gateway CPU seconds per 10,000 requests: the Seawall process's user + system CPU
  time under closed-loop load (wrk, ``--connections``), divided by the requests served;
  the two Seawalls take turns in short slices, because this shared host's speed drifts
  by tens of percent within a minute.

Each figure is the median of ``--runs`` runs; results go to
``bench/results/overhead_monitoring.json`` and a table is printed. Every process
started is stopped at the end, also on failure, Ctrl-C or SIGTERM.

    .venv/bin/python bench/overhead_monitoring.py        # about 4 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from loadgen import run_loadgen
from machine import machine_info
from processes import ProcessGroup, cpu_seconds, free_port, stop_on_sigterm, wait_ready
from seawall.config.monitoring import TracingSettings
from stack_variants import seawall_config
from wrk import run_wrk, write_script

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "overhead_monitoring.json"
MASTER_KEY = "sk-bench-monitoring-master-key-0123456789"
CHAT = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Say hello in five words."}],
    "max_tokens": 16,
}
VARIANTS = ("off", "on")
OFF = "monitoring:\n  metrics: false\n  quality: {refusals: false}\n"
# The bars of issue 6.
MAX_CPU_INCREASE = 0.10
MAX_ADDED_P50_MS = 0.2


def start(group: ProcessGroup, name: str, command: list[str], ready: str) -> Any:
    """Start a process of the benchmark and wait until ``ready`` answers."""
    process = group.start(name, command)
    try:
        wait_ready(ready, process, any_status=False)
    except RuntimeError as error:
        raise RuntimeError(f"{name} did not start: {error}\n{group.log(name)}") from None
    return process


def start_stack(group: ProcessGroup, scratch: Path) -> dict[str, Any]:
    """The simulator, the OTLP receiver and both Seawalls; their URLs and process ids."""
    python = sys.executable
    port = free_port()
    simulator = f"http://127.0.0.1:{port}"
    start(group, "simulator", [python, "-m", "seawall.cli.main", "simulate", "--port", str(port)],
          f"{simulator}/v1/models")  # fmt: skip
    sink_port = free_port()
    sink = f"http://127.0.0.1:{sink_port}"
    start(group, "otlp", [python, str(BENCH_DIR / "otlp_sink.py"), "--port", str(sink_port)],
          f"{sink}/stats")  # fmt: skip
    stack: dict[str, Any] = {"direct": f"{simulator}/v1/chat/completions", "sink": sink}
    on = f"monitoring:\n  tracing: {{otlp_endpoint: '{sink}/v1/traces'}}\n"
    for variant, extra in (("off", OFF), ("on", on)):
        config = seawall_config(scratch / variant, simulator, MASTER_KEY)
        config.write_text(config.read_text() + extra)
        port = free_port()
        command = [python, "-m", "seawall.cli.main", "serve", "--config", str(config),
                   "--port", str(port), "--workers", "1"]  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        process = start(group, f"seawall-{variant}", command, f"{base}/health/ready")
        stack[variant] = {"url": f"{base}/v1/chat/completions", "pid": process.pid}
    return stack


def latency(url: str, rate: int, seconds: float) -> dict[str, float]:
    """p50 in ms of an open-loop run at ``rate`` requests per second, and its errors."""
    result = run_loadgen(
        "fixed",
        url,
        orjson.dumps(CHAT),
        MASTER_KEY,
        *("--rate", str(rate), "--seconds", f"{seconds:g}", "--warmup", "1"),
    )
    return {"p50_ms": float(result["latency"]["p50_ms"]), "errors": result["errors"]}


def cpu_per_10k(
    stack: dict[str, Any], script: Path, conns: int, slices: int, seconds: float
) -> dict[str, dict[str, float]]:
    """Each Seawall's CPU seconds per 10,000 requests under wrk, in alternating slices.

    This host's speed drifts by tens of percent within a minute (a shared virtual
    machine), so the two Seawalls take turns in short slices (off, on, on, off, ...)
    and each one's CPU time and requests are summed over all its slices.
    """
    totals = {variant: {"cpu_s": 0.0, "requests": 0, "seconds": 0.0, "errors": 0}
              for variant in VARIANTS}  # fmt: skip
    for variant in VARIANTS:  # warm-up
        run_wrk(stack[variant]["url"], script, connections=conns, seconds=1)
    for index in range(slices):
        order = VARIANTS if index % 2 == 0 else tuple(reversed(VARIANTS))
        for variant in order:
            target, total = stack[variant], totals[variant]
            before = cpu_seconds([target["pid"]])
            result = run_wrk(target["url"], script, connections=conns, seconds=seconds)
            total["cpu_s"] += cpu_seconds([target["pid"]]) - before
            total["requests"] += result.requests
            total["seconds"] += result.seconds
            total["errors"] += result.errors
    return {
        variant: {
            "cpu_s_per_10k": total["cpu_s"] / total["requests"] * 10_000,
            "rate": total["requests"] / total["seconds"],
            "wrk_errors": total["errors"],
        }
        for variant, total in totals.items()
    }


def exports(sink: str) -> dict[str, int]:
    """What the OTLP receiver has received so far."""
    with urllib.request.urlopen(f"{sink}/stats", timeout=5) as answer:
        counts: dict[str, int] = json.load(answer)
    return counts


def runs(args: argparse.Namespace, stack: dict[str, Any], script: Path) -> list[dict[str, Any]]:
    """Every run: direct, then both Seawalls in alternating order."""
    samples = []
    for run in range(1, args.runs + 1):
        order = VARIANTS if run % 2 else tuple(reversed(VARIANTS))
        sample: dict[str, Any] = {"order": list(order)}
        sample["direct_p50_ms"] = latency(stack["direct"], args.rate, args.seconds)["p50_ms"]
        cpu = cpu_per_10k(stack, script, args.connections, args.slices, args.slice_seconds)
        for variant in order:
            fixed = latency(stack[variant]["url"], args.rate, args.seconds)
            sample[variant] = {
                "p50_ms": fixed["p50_ms"],
                "added_p50_ms": fixed["p50_ms"] - sample["direct_p50_ms"],
                "loadgen_errors": fixed["errors"],
                **cpu[variant],
            }
        sample["otlp_receiver"] = exports(stack["sink"])
        samples.append(sample)
        print(
            f"run {run}  direct p50 {sample['direct_p50_ms']:.3f} ms  "
            + "  ".join(
                f"{v}: added p50 {sample[v]['added_p50_ms']:.3f} ms, "
                f"{sample[v]['cpu_s_per_10k']:.3f} CPU s/10k ({sample[v]['rate']:.0f} req/s)"
                for v in VARIANTS
            ),
            flush=True,
        )
    return samples


def summarise(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over runs, and the bars."""

    def median(variant: str, key: str) -> float:
        return round(statistics.median(s[variant][key] for s in samples), 4)

    summary: dict[str, Any] = {
        variant: {
            "added_p50_ms": median(variant, "added_p50_ms"),
            "cpu_s_per_10k_requests": median(variant, "cpu_s_per_10k"),
            "wrk_rate_req_s": median(variant, "rate"),
            "errors": sum(s[variant]["loadgen_errors"] + s[variant]["wrk_errors"] for s in samples),
        }
        for variant in VARIANTS
    }
    increase = statistics.median(
        s["on"]["cpu_s_per_10k"] / s["off"]["cpu_s_per_10k"] - 1 for s in samples
    )
    added = statistics.median(s["on"]["p50_ms"] - s["off"]["p50_ms"] for s in samples)
    summary["on_vs_off"] = {
        "cpu_increase": round(increase, 4),
        "added_p50_ms": round(added, 4),
    }
    summary["bars"] = {
        "cpu_increase_at_most_10_percent": increase <= MAX_CPU_INCREASE,
        "added_p50_at_most_0_2_ms": added <= MAX_ADDED_P50_MS,
    }
    return summary


def main(argv: list[str] | None = None) -> int:
    """Run, write the JSON, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--slices", type=int, default=6, help="wrk slices per Seawall per run")
    parser.add_argument("--slice-seconds", type=int, default=2)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    stop_on_sigterm()
    started = time.monotonic()
    info = machine_info()
    with (
        tempfile.TemporaryDirectory(prefix="seawall-monitoring-") as tmp,
        ProcessGroup(Path(tmp)) as group,
    ):
        stack = start_stack(group, Path(tmp))
        script = write_script(Path(tmp), orjson.dumps(CHAT), MASTER_KEY)
        samples = runs(args, stack, script)
    report = {
        "machine": info,
        "runs": args.runs,
        "duration_s": round(time.monotonic() - started),
        "method": {
            "stack": "seawall simulate at zero latency; two seawall serve --workers 1 "
            "(off and on) side by side; an OTLP/HTTP receiver; all on 127.0.0.1",
            "off": OFF.strip(),
            "on": "monitoring defaults (metrics, state sampler, refusal detection) plus "
            f"tracing: otlp_endpoint set, sampling_ratio {TracingSettings().sampling_ratio:g} "
            "(the default)",
            "added_p50": f"open loop at {args.rate} req/s for {args.seconds:g} s after a 1 s "
            "warm-up; Seawall's p50 minus the direct p50 of the same run",
            "cpu": f"wrk -t1 -c{args.connections} in {args.slices} slices of "
            f"{args.slice_seconds:g} s per Seawall per run, the two taking turns (off, on, "
            "on, off, ...) after a 1 s warm-up each; per Seawall, its process's user+system "
            "CPU seconds over all its slices / its requests * 10,000",
            "on_vs_off": "per run, on / off - 1 (CPU) and on p50 - off p50 (latency); "
            "the median over runs",
            "interleaving": "each run measures both, alternating which goes first",
        },
        "samples": samples,
        **summarise(samples),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"\nwritten to {args.output}")
    return 0


def print_table(report: dict[str, Any]) -> None:
    """The medians and the bars."""
    print(f"\n{'':10s} {'added p50 ms':>13s} {'CPU s / 10k req':>16s} {'wrk req/s':>10s}")
    for variant in VARIANTS:
        row = report[variant]
        print(
            f"{variant:10s} {row['added_p50_ms']:13.3f} {row['cpu_s_per_10k_requests']:16.3f} "
            f"{row['wrk_rate_req_s']:10.0f}"
        )
    versus = report["on_vs_off"]
    print(
        f"\non vs off: CPU {versus['cpu_increase']:+.1%} (bar <= +10%), "
        f"p50 {versus['added_p50_ms']:+.3f} ms (bar <= 0.2 ms); bars {report['bars']}"
    )


if __name__ == "__main__":
    sys.exit(main())
