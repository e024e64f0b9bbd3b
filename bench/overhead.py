"""Seawall's overhead over its upstream: added latency, throughput, first byte, memory.

The simulator at zero latency (``seawall simulate``, its own process) is measured
directly and through Seawall (``seawall serve --config FILE``: the full pipeline,
the SQLite record writer active, the local models configured but never loaded)
in the same run, interleaved, everything on 127.0.0.1:

* added latency p50/p99 at fixed rates (open loop, ``loadgen.py``, its own
  process): the percentile through Seawall minus the same percentile direct;
* maximum throughput with wrk at several connection counts (non-streaming);
* streaming time to the first ``data:`` chunk, direct and through Seawall;
* resident memory of each Seawall worker at request 20,000 and 100,000 of a
  sustained run, on a freshly started Seawall each run.

Each figure is the median of ``--runs`` runs (three by default). Results go to
``bench/results/overhead.json`` and a table is printed. Every process started
is stopped at the end, also on failure, Ctrl-C or SIGTERM.

    .venv/bin/python bench/overhead.py            # about 7 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from loadgen import run_loadgen
from machine import CpuWindow, machine_info
from overhead_report import bars, print_table
from processes import (
    ProcessGroup,
    cpu_seconds,
    descendants,
    free_port,
    rss_bytes,
    server_workers,
    stop_on_sigterm,
    wait_ready,
    wait_settled,
)
from stack_variants import seawall_config
from tenancy_setup import TENANCY_METHOD, enable_tenancy, provision
from wrk import run_wrk, write_script

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "overhead.json"
TENANCY_RESULTS = BENCH_DIR / "results" / "overhead_tenancy.json"
MASTER_KEY = "sk-bench-overhead-master-key-0123456789"
CHAT = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Say hello in five words."}],
    "max_tokens": 16,
}
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Stack:
    """The running simulator and Seawall, and how to reach each."""

    direct: str
    seawall: str
    seawall_pid: int
    simulator_pid: int

    def url(self, target: str) -> str:
        """The chat completions URL of ``direct`` or ``seawall``."""
        return self.direct if target == "direct" else self.seawall

    def cpu_groups(self) -> dict[str, list[int]]:
        """The benchmark's long-running processes, each Seawall worker on its own."""
        workers = sorted(server_workers(self.seawall_pid))
        others = [p for p in [self.seawall_pid, *descendants(self.seawall_pid)] if p not in workers]
        groups = {f"worker {i}": [pid] for i, pid in enumerate(workers)}
        return groups | {"seawall other": others, "simulator": [self.simulator_pid]}


def pinned(cpus: str | None, command: Sequence[str]) -> list[str]:
    """The command, run under ``taskset -c CPUS`` when pinning was asked for."""
    return ["taskset", "-c", cpus, *command] if cpus else list(command)


def start_simulator(group: ProcessGroup, args: argparse.Namespace) -> tuple[str, int]:
    """``seawall simulate`` at zero latency; its base URL and process id."""
    port = free_port()
    command = [sys.executable, "-m", "seawall.cli.main", "simulate", "--port", str(port)]
    process = group.start("simulator", pinned(args.pin_simulator, command))
    base = f"http://127.0.0.1:{port}"
    wait_ready(f"{base}/v1/models", process)
    return base, process.pid


def start_seawall(
    group: ProcessGroup, args: argparse.Namespace, config: Path
) -> tuple[str, subprocess.Popen[bytes]]:
    """``seawall serve`` with ``--workers``; its base URL and process, once ready."""
    port = free_port()
    command = [
        *(sys.executable, "-m", "seawall.cli.main", "serve", "--config", str(config)),
        *("--port", str(port), "--workers", str(args.workers)),
    ]
    process = group.start("seawall", pinned(args.pin_seawall, command))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base}/health/ready", process, any_status=False)
    except RuntimeError as error:
        log = group.log("seawall")
        raise RuntimeError(f"seawall serve did not start: {error}\n{log}") from None
    wait_settled(process.pid, args.workers)
    return base, process


def loadgen(
    args: argparse.Namespace,
    mode: str,
    url: str,
    body: bytes,
    *extra: str,
    at_checkpoint: Callable[[dict[str, Any]], None] | None = None,
) -> Any:
    """Run the load generator in its own process and return its JSON result."""
    prefix = ["taskset", "-c", args.pin_load] if args.pin_load else []
    return run_loadgen(
        mode, url, body, args.api_key, *extra, prefix=prefix, at_checkpoint=at_checkpoint
    )


def fixed_rate(
    args: argparse.Namespace, stack: Stack, target: str, rate: int, body: bytes, seconds: float
) -> dict[str, Any]:
    """One open-loop measurement at ``rate`` requests per second."""
    with CpuWindow(stack.cpu_groups()) as window:
        result: dict[str, Any] = loadgen(
            args,
            "fixed",
            stack.url(target),
            body,
            *("--rate", str(rate), "--seconds", f"{seconds:g}", "--warmup", "1"),
        )
    result["others_cores"] = window.others_cores
    return result


def throughput(
    args: argparse.Namespace, stack: Stack, target: str, script: Path, conns: int
) -> dict[str, Any]:
    """wrk at ``conns`` connections after a one-second warm-up."""
    wrk = ["taskset", "-c", args.pin_load] if args.pin_load else []
    run_wrk(stack.url(target), script, connections=conns, seconds=1, prefix=wrk)
    with CpuWindow(stack.cpu_groups()) as window:
        result = run_wrk(
            stack.url(target), script, connections=conns, seconds=args.wrk_seconds, prefix=wrk
        )
    workers = [cpu for name, cpu in window.cpu_s.items() if name.startswith("worker ")]
    return {
        "rate": result.rate,
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "errors": result.errors,
        "others_cores": window.others_cores,
        "worker_cpu_share": [round(c / sum(workers), 3) for c in workers] if sum(workers) else [],
    }


def latency_runs(args: argparse.Namespace, stack: Stack, script: Path) -> dict[str, list[Any]]:
    """Every latency and throughput measurement, run after run, direct then Seawall."""
    plain = orjson.dumps(args.chat)
    streamed = orjson.dumps({**args.chat, "stream": True})
    samples: dict[str, list[Any]] = {}
    for run in range(1, args.runs + 1):
        for rate in args.rates:
            seconds = args.rate_seconds if rate < 500 else args.rate_seconds * 0.6
            pair = {t: fixed_rate(args, stack, t, rate, plain, seconds) for t in TARGETS}
            samples.setdefault(f"fixed_rate/{rate}", []).append(pair)
            _say(run, f"{rate} req/s", pair, "latency")
        pair = {
            t: fixed_rate(args, stack, t, args.stream_rate, streamed, args.stream_seconds)
            for t in TARGETS
        }
        samples.setdefault("streaming", []).append(pair)
        _say(run, f"stream {args.stream_rate} req/s", pair, "first_data")
        for conns in args.connections:
            pair = {t: throughput(args, stack, t, script, conns) for t in TARGETS}
            samples.setdefault(f"throughput/{conns}", []).append(pair)
            print(
                f"run {run}  wrk c{conns:<4d} direct {pair['direct']['rate']:7.0f} req/s  "
                f"seawall {pair['seawall']['rate']:7.0f} req/s  "
                f"worker CPU shares {pair['seawall']['worker_cpu_share']}  "
                f"others {pair['seawall']['others_cores']:.2f} cores",
                flush=True,
            )
    return samples


TARGETS = ("direct", "seawall")


def _say(run: int, what: str, pair: dict[str, Any], key: str) -> None:
    d, s = pair["direct"][key], pair["seawall"][key]
    print(
        f"run {run}  {what:20s} p50 {d['p50_ms']:6.2f} -> {s['p50_ms']:6.2f} ms  "
        f"p99 {d['p99_ms']:6.2f} -> {s['p99_ms']:6.2f} ms  "
        f"sent {pair['seawall']['achieved_send_rate']:6.1f}/s  "
        f"errors {pair['direct']['errors'] + pair['seawall']['errors']}",
        flush=True,
    )


def memory_run(args: argparse.Namespace, group: ProcessGroup, config: Path) -> dict[str, Any]:
    """A fresh Seawall; RSS of each worker when the run reaches each checkpoint.

    One generator process keeps the same 32 connections for the whole run and
    pauses at each checkpoint, so every worker keeps the share of traffic it had
    from the start; each worker's CPU share is recorded to show that share.
    """
    base, process = start_seawall(group, args, config)
    try:
        workers = sorted(server_workers(process.pid))
        points: dict[str, Any] = {}

        def sample(at: int) -> None:
            points[str(at)] = {
                "rss_mib": [rss_bytes(pid) / MIB for pid in workers],
                "cpu_s": [cpu_seconds([pid]) for pid in workers],
                "records_stored": records_stored(config.parent / "data" / "seawall.db"),
            }

        sample(0)
        result = loadgen(
            args,
            "count",
            f"{base}/v1/chat/completions",
            orjson.dumps(args.chat),
            *("--checkpoints", *map(str, args.memory_checkpoints), "--connections", "32"),
            at_checkpoint=lambda data: sample(data["checkpoint"]),
        )
        sample(args.memory_checkpoints[-1])
        return {"worker_pids": workers, "checkpoints": points, "errors": result["errors"]}
    finally:
        group.stop(process)


def records_stored(database: Path) -> int | None:
    """Request records in the embedded store now (a diagnostic: the writer's backlog shows)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            return int(db.execute("SELECT count(*) FROM requests").fetchone()[0])
    except sqlite3.Error:
        return None


def summarise(samples: dict[str, list[Any]], memory: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over runs; added latency is the median of the per-run differences."""
    out: dict[str, Any] = {"fixed_rate": {}, "max_throughput": {}}
    for name, runs in samples.items():
        kind, _, key = name.partition("/")
        if kind == "fixed_rate":
            out["fixed_rate"][key] = _latency_summary(runs, "latency")
        elif kind == "streaming":
            out["streaming_first_byte"] = _latency_summary(runs, "first_data")
        else:
            out["max_throughput"][key] = {
                "direct_rps": _median(r["direct"]["rate"] for r in runs),
                "seawall_rps": _median(r["seawall"]["rate"] for r in runs),
                "seawall_p50_ms": _median(r["seawall"]["p50_ms"] for r in runs),
                "seawall_p99_ms": _median(r["seawall"]["p99_ms"] for r in runs),
                "errors": sum(r[t]["errors"] for r in runs for t in TARGETS),
                "others_cores_median": _median(r["seawall"]["others_cores"] for r in runs),
                "runs": runs,
            }
    out["memory"] = _memory_summary(memory)
    return out


def _latency_summary(runs: list[Any], key: str) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for q in ("p50", "p99"):
        direct = [r["direct"][key][f"{q}_ms"] for r in runs]
        seawall = [r["seawall"][key][f"{q}_ms"] for r in runs]
        summary[f"direct_{q}_ms"] = _median(direct)
        summary[f"seawall_{q}_ms"] = _median(seawall)
        summary[f"added_{q}_ms"] = _median(s - d for s, d in zip(seawall, direct, strict=True))
    for target in TARGETS:
        summary[f"{target}_achieved_send_rate"] = _median(
            r[target]["achieved_send_rate"] for r in runs
        )
        summary[f"{target}_send_lag_p99_ms"] = _median(
            r[target]["send_lag"]["p99_ms"] for r in runs
        )
    summary["errors"] = sum(r[t]["errors"] for r in runs for t in TARGETS)
    summary["others_cores_median"] = _median(r["seawall"]["others_cores"] for r in runs)
    summary["runs"] = [
        {t: {k: v for k, v in r[t].items() if k != "others_cores"} for t in TARGETS} for r in runs
    ]
    return summary


def _memory_summary(memory: list[dict[str, Any]]) -> dict[str, Any]:
    """Per run, the largest worker and the largest growth; then the median over runs.

    Which worker gets which connections is up to the kernel, so worker number N
    of one run is not comparable with number N of another: each run is reduced
    to its worst worker first.
    """
    checkpoints = [k for k in memory[0]["checkpoints"] if k != "0"]
    first, last = checkpoints[0], checkpoints[-1]
    for run in memory:
        points = run["checkpoints"]
        workers = range(len(run["worker_pids"]))
        cpu = [points[last]["cpu_s"][w] - points["0"]["cpu_s"][w] for w in workers]
        run["worker_cpu_share"] = [round(c / sum(cpu), 3) for c in cpu] if sum(cpu) else []
        run["growth_percent_per_worker"] = [
            (points[last]["rss_mib"][w] / points[first]["rss_mib"][w] - 1) * 100 for w in workers
        ]
    summary: dict[str, Any] = {"checkpoints": [int(c) for c in checkpoints]}
    for point in ("0", *checkpoints):
        summary[f"max_rss_mib_at_{point}"] = _median(
            max(run["checkpoints"][point]["rss_mib"]) for run in memory
        )
    summary["max_growth_percent"] = _median(max(r["growth_percent_per_worker"]) for r in memory)
    summary["max_growth_percent_per_run"] = [max(r["growth_percent_per_worker"]) for r in memory]
    summary["errors"] = sum(run["errors"] for run in memory)
    summary["runs"] = memory
    return summary


def _median(values: Any) -> float:
    return float(statistics.median(list(values)))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; defaults give the published figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="Seawall worker processes (2: measured best here by bench/stack_choice.py)",
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rates", type=int, nargs="+", default=[100, 200, 500])
    parser.add_argument("--rate-seconds", type=float, default=10.0)
    parser.add_argument("--stream-rate", type=int, default=100)
    parser.add_argument("--stream-seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--wrk-seconds", type=float, default=5.0)
    parser.add_argument("--memory-checkpoints", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--pin-seawall", metavar="CPUS", help="taskset -c CPUS for Seawall")
    parser.add_argument("--pin-simulator", metavar="CPUS", help="taskset -c CPUS for the simulator")
    parser.add_argument("--pin-load", metavar="CPUS", help="taskset -c CPUS for wrk and loadgen")
    parser.add_argument(
        "--tenancy",
        action="store_true",
        help="keys, client limits and budgets on, shared through the local Redis "
        "(bench/tenancy_setup.py); writes bench/results/overhead_tenancy.json",
    )
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    if args.output is None:
        args.output = TENANCY_RESULTS if args.tenancy else RESULTS
    return args


def main(argv: list[str] | None = None) -> int:
    """Run everything, write the JSON, print the table."""
    args = parse_args(argv)
    stop_on_sigterm()
    started = time.monotonic()
    info = machine_info()
    with (
        tempfile.TemporaryDirectory(prefix="seawall-overhead-") as tmp,
        ProcessGroup(Path(tmp)) as group,
    ):
        scratch = Path(tmp)
        direct_base, simulator_pid = start_simulator(group, args)
        config = seawall_config(scratch, direct_base, MASTER_KEY)
        args.api_key, args.chat = MASTER_KEY, CHAT
        if args.tenancy:
            enable_tenancy(config)
        base, seawall = start_seawall(group, args, config)
        if args.tenancy:
            args.api_key = provision(base, MASTER_KEY)
            args.chat = {**CHAT, "user": "bench-user"}
        stack = Stack(
            direct=f"{direct_base}/v1/chat/completions",
            seawall=f"{base}/v1/chat/completions",
            seawall_pid=seawall.pid,
            simulator_pid=simulator_pid,
        )
        script = write_script(scratch, orjson.dumps(args.chat), args.api_key)
        samples = latency_runs(args, stack, script)
        group.stop(seawall)
        memory = []
        for run in range(1, args.runs + 1):
            memory.append(memory_run(args, group, config))
            points = memory[-1]["checkpoints"]
            rss = "  ".join(
                f"at {k}: {', '.join(f'{m:.1f}' for m in v['rss_mib'])}" for k, v in points.items()
            )
            cpu = [points[k]["cpu_s"] for k in points]
            used = [round(b - a, 1) for a, b in zip(cpu[0], cpu[-1], strict=True)]
            stored = [points[k]["records_stored"] for k in points]
            print(
                f"run {run}  memory MiB  {rss}  (CPU s per worker {used}; records stored {stored})",
                flush=True,
            )
    report = {
        "machine": info,
        "seawall_workers": args.workers,
        "tenancy": args.tenancy,
        "cpu_pinning": {
            "seawall": args.pin_seawall or "none",
            "simulator": args.pin_simulator or "none",
            "load_generators": args.pin_load or "none",
        },
        "runs": args.runs,
        "duration_s": round(time.monotonic() - started),
        "method": method(args),
        **summarise(samples, memory),
    }
    report["bars"] = bars(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"\nwritten to {args.output}")
    return 0


def method(args: argparse.Namespace) -> dict[str, str]:
    """How each figure was measured, with this run's settings."""
    first, last = args.memory_checkpoints[0], args.memory_checkpoints[-1]
    return {
        "upstream": "seawall simulate at zero latency, its own process, 127.0.0.1",
        "seawall": f"seawall serve --config FILE --workers {args.workers}: full pipeline, "
        "SQLite record writer, local models configured but never called (lazy, not loaded)"
        + (f"; {TENANCY_METHOD}" if args.tenancy else ""),
        "fixed_rate": "open loop (bench/loadgen.py, raw asyncio + uvloop + httptools, its own "
        "process): request i due at start + i/rate, latency from the due time; 1 s warm-up "
        f"discarded; {args.rate_seconds:g} s measured ({args.rate_seconds * 0.6:g} s at 500 "
        "req/s and above); direct, then through Seawall, in each run",
        "added_latency": "per run, Seawall's percentile minus the direct percentile of that "
        "run; the median over runs is reported",
        "streaming_first_byte": f"open loop at {args.stream_rate} req/s for "
        f"{args.stream_seconds:g} s, stream: true, from the due time to the first body bytes "
        "holding 'data:'",
        "max_throughput": f"wrk -t1 -cN -d{args.wrk_seconds:g}s, non-streaming POST "
        "/v1/chat/completions with a small JSON body (Lua script), after a 1 s warm-up",
        "memory": "a freshly started Seawall per run; VmRSS of each worker from /proc when "
        f"exactly {first:,} and {last:,} chat requests are done (closed loop, the same 32 "
        "connections throughout, paused at each checkpoint); per run the largest worker and "
        "the largest growth, then the median over runs; each run also records each worker's "
        "CPU share and the request records stored so far (the record writer's backlog)",
        "workers": "the worker count is chosen by bench/stack_choice.py (worker_count.py)",
        "others_cores": "CPU the rest of the machine (other users) used meanwhile, in cores; "
        "approximate: machine busy time minus the benchmark's own processes",
        "figures": "median of the runs",
    }


if __name__ == "__main__":
    sys.exit(main())
