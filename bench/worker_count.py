"""How many ``seawall serve`` workers suit this machine, measured.

Each count runs as its own ``seawall serve --workers N`` (own data directory),
all started first and measured round-robin against the same simulator: wrk at
each connection count, then the open-loop generator at a fixed rate for the
latency added over the simulator measured directly in the same run. The count
with the highest median throughput at the first connection count is chosen.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

from loadgen import run_loadgen
from machine import CpuWindow
from processes import (
    ProcessGroup,
    descendants,
    free_port,
    wait_ready,
    wait_settled,
)
from wrk import run_wrk

CONNECTIONS = (32, 128)


def start_serve(group: ProcessGroup, config: Path, workers: int) -> tuple[str, int]:
    """``seawall serve --workers N``; its chat URL and process id once every worker is up."""
    port = free_port()
    command = [
        *(sys.executable, "-m", "seawall.cli.main", "serve", "--config", str(config)),
        *("--port", str(port), "--workers", str(workers)),
    ]
    process = group.start(f"serve-{workers}-workers", command)
    base = f"http://127.0.0.1:{port}"
    wait_ready(f"{base}/health/ready", process, any_status=False)
    wait_settled(process.pid, workers)
    return f"{base}/v1/chat/completions", process.pid


def measure_workers(
    args: argparse.Namespace,
    configs: dict[int, Path],
    group: ProcessGroup,
    direct_url: str,
    script: Path,
    body: bytes,
    key: str,
) -> dict[str, Any]:
    """Throughput and added latency for each worker count; the median over runs."""
    servers = {count: start_serve(group, config, count) for count, config in configs.items()}
    samples: dict[int, list[dict[str, float]]] = {count: [] for count in servers}
    options = ("--rate", str(args.rate), "--seconds", f"{args.rate_seconds:g}", "--warmup", "1")
    for run in range(1, args.runs + 1):
        direct = run_loadgen("fixed", direct_url, body, key, *options)["latency"]
        for count, (url, pid) in servers.items():
            sample: dict[str, float] = {}
            for conns in CONNECTIONS:
                run_wrk(url, script, connections=conns, seconds=1)  # warm-up
                with CpuWindow({"seawall": [pid, *descendants(pid)]}) as window:
                    result = run_wrk(url, script, connections=conns, seconds=args.seconds)
                sample[f"rps_c{conns}"] = result.rate
                sample[f"others_cores_c{conns}"] = window.others_cores
            paced = run_loadgen("fixed", url, body, key, *options)["latency"]
            sample["added_p50_ms"] = paced["p50_ms"] - direct["p50_ms"]
            sample["added_p99_ms"] = paced["p99_ms"] - direct["p99_ms"]
            samples[count].append(sample)
            print(
                f"run {run}  seawall serve --workers {count}  "
                + "  ".join(f"c{c} {sample[f'rps_c{c}']:6.0f} req/s" for c in CONNECTIONS)
                + f"  added at {args.rate} req/s p50 {sample['added_p50_ms']:.2f} ms",
                flush=True,
            )
    summary: dict[str, dict[str, Any]] = {
        str(count): {
            **{
                f"median_{name}": statistics.median(run[name] for run in runs)
                for name in runs[0]
                if not name.startswith("others")
            },
            "runs": runs,
        }
        for count, runs in samples.items()
    }
    best = max(summary, key=lambda count: float(summary[count][f"median_rps_c{CONNECTIONS[0]}"]))
    return {"counts": summary, "chosen": int(best)}


def print_workers(result: dict[str, Any], rate: int) -> None:
    """One line per worker count."""
    print(f"\n{'seawall serve --workers N':26s} {'c32 req/s':>10s} {'c128 req/s':>11s}", end="")
    print(f" {'added p50/p99 ms at ' + str(rate) + '/s':>26s}")
    for count, row in result["counts"].items():
        added = f"{row['median_added_p50_ms']:.2f} / {row['median_added_p99_ms']:.2f}"
        print(
            f"{'N = ' + count:26s} {row['median_rps_c32']:10.0f} {row['median_rps_c128']:11.0f}"
            f" {added:>26s}"
        )
    print(f"chosen: {result['chosen']} worker(s)")
