"""Choosing Seawall's HTTP server, upstream client and JSON library by measuring them.

Four measurements, all against the simulator at zero latency on 127.0.0.1:

1. A bare forwarder (``forwarder.py``: parse, POST upstream, parse, answer) in
   each combination that isolates one choice: uvicorn (httptools + uvloop) vs
   granian for the server, aiohttp vs httpx for the upstream client, orjson vs
   the standard library for JSON. (hypercorn is measured when it is installed.)
2. Seawall itself (the full pipeline with the SQLite record writer) under each
   server, at the worker count it is deployed with, since that is what the
   choice is for; plus ``seawall serve`` itself, which is uvicorn with the
   coalescing protocol of ``seawall/http/server_protocol.py``.
3. A micro-benchmark of the JSON work per request (decode the client body,
   encode the upstream body, decode the answer, encode it back).
4. ``seawall serve --workers N`` for several N (``worker_count.py``): how many
   workers suit this machine with wrk and the simulator sharing it.

Forwarders run one worker, so their figures compare per-process efficiency;
each Seawall variant has its own database. All servers are started first and
measured round-robin, ``--runs`` times, with wrk at ``--connections`` and then
at a fixed rate (open loop, ``loadgen.py``) for the latency each adds over the
simulator measured directly in the same run; each figure is the median over
runs. Besides req/s the server's CPU time per request is reported: it is less
sensitive than req/s to other work on a shared machine. Writes
``bench/results/stack_choice.json``.

    .venv/bin/python bench/stack_choice.py        # about 8 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from loadgen import run_loadgen
from machine import CpuWindow, machine_info
from processes import ProcessGroup, descendants, free_port, stop_on_sigterm, wait_ready
from stack_variants import PLAIN_SERVERS, Variant, seawall_config, start_variant, variants
from worker_count import measure_workers, print_workers
from wrk import run_wrk, write_script

RESULTS = Path(__file__).resolve().parent / "results" / "stack_choice.json"
MASTER_KEY = "sk-bench-stack-choice-0123456789"
# A chat.completion of the simulator's shape, as a gateway receives it.
SAMPLE_ANSWER = {
    "id": "chatcmpl-8769e1a6bfcf101efeaf19f4",
    "object": "chat.completion",
    "created": 1795767214,
    "model": "gpt-4o-mini",
    "system_fingerprint": "fp_seawall_simulator",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "refusal": None,
                "annotations": [],
                "content": "Simulated answer to: Say hello in five words. while staying",
            },
            "logprobs": None,
            "finish_reason": "length",
        }
    ],
    "usage": {
        "prompt_tokens": 12,
        "completion_tokens": 16,
        "total_tokens": 28,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    },
}
CHAT_BODY = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Say hello in five words."}],
    "max_tokens": 16,
}


def json_micro(repeat: int = 20_000) -> dict[str, float]:
    """Microseconds per request for a gateway's JSON work, per library."""
    request = orjson.dumps(CHAT_BODY)
    answer = orjson.dumps(SAMPLE_ANSWER)
    codecs: dict[str, tuple[Callable[[bytes], Any], Callable[[Any], bytes]]] = {
        "orjson": (orjson.loads, orjson.dumps),
        "json": (json.loads, lambda v: json.dumps(v, separators=(",", ":")).encode()),
    }
    out: dict[str, float] = {}
    for name, (loads, dumps) in codecs.items():

        def one_request(
            loads: Callable[[bytes], Any] = loads, dumps: Callable[[Any], bytes] = dumps
        ) -> None:
            dumps(loads(request))
            dumps(loads(answer))

        seconds = min(timeit.repeat(one_request, number=repeat, repeat=3))
        out[name] = seconds / repeat * 1e6
    return out


def measure(
    args: argparse.Namespace, scratch: Path, group: ProcessGroup
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Start the simulator and every variant, measure them round-robin; then worker counts."""
    sim_port = free_port()
    simulator = group.start(
        "simulator", [sys.executable, "-m", "seawall.cli.main", "simulate", "--port", str(sim_port)]
    )
    upstream = f"http://127.0.0.1:{sim_port}"
    wait_ready(f"{upstream}/v1/models", simulator)
    script = write_script(scratch, orjson.dumps(CHAT_BODY), MASTER_KEY)
    servers = {
        v.name: (v, *start_variant(group, v, upstream, scratch, MASTER_KEY))
        for v in variants(args.seawall_workers)
    }
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
    body = orjson.dumps(CHAT_BODY)
    for run in range(args.runs):
        direct = _fixed_rate(args, f"{upstream}/v1/chat/completions", body)
        for name, (_, url, pid) in servers.items():
            run_wrk(url, script, connections=args.connections, seconds=1)  # warm-up
            groups = {"server": [pid, *descendants(pid)], "simulator": [simulator.pid]}
            with CpuWindow(groups) as window:
                result = run_wrk(url, script, connections=args.connections, seconds=args.seconds)
            paced = _fixed_rate(args, url, body)
            sample = {
                "rate": result.rate,
                "p50_ms": result.p50_ms,
                "p99_ms": result.p99_ms,
                "server_cpu_us_per_request": window.cpu_s["server"] / result.requests * 1e6,
                "errors": float(result.errors + paced["errors"]),
                "others_cores": window.others_cores,
                "added_p50_ms_at_rate": paced["latency"]["p50_ms"] - direct["latency"]["p50_ms"],
                "added_p99_ms_at_rate": paced["latency"]["p99_ms"] - direct["latency"]["p99_ms"],
            }
            samples[name].append(sample)
            print(
                f"run {run + 1}  {name:46s} {result.rate:7.0f} req/s  "
                f"{sample['server_cpu_us_per_request']:5.0f} us CPU/req  "
                f"added at {args.rate} req/s p50 {sample['added_p50_ms_at_rate']:.2f} ms  "
                f"others {window.others_cores:.2f} cores",
                flush=True,
            )
    results = {name: _summarise(servers[name][0], runs) for name, runs in samples.items()}
    for _, _, pid in servers.values():
        group.stop_pid(pid)
    configs = {
        n: seawall_config(scratch / f"workers-{n}", upstream, MASTER_KEY)
        for n in args.worker_counts
    }
    direct_url = f"{upstream}/v1/chat/completions"
    workers = measure_workers(args, configs, group, direct_url, script, body, MASTER_KEY)
    return results, workers


def _fixed_rate(args: argparse.Namespace, url: str, body: bytes) -> Any:
    options = ("--rate", str(args.rate), "--seconds", f"{args.rate_seconds:g}", "--warmup", "1")
    return run_loadgen("fixed", url, body, MASTER_KEY, *options)


def _summarise(variant: Variant, runs: list[dict[str, float]]) -> dict[str, Any]:
    return {
        "app": variant.app,
        "server": variant.server,
        "client": variant.client,
        "json": variant.json,
        "workers": variant.workers,
        "median_rate": statistics.median(r["rate"] for r in runs),
        "median_p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "median_p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "median_server_cpu_us_per_request": statistics.median(
            r["server_cpu_us_per_request"] for r in runs
        ),
        "median_added_p50_ms_at_rate": statistics.median(r["added_p50_ms_at_rate"] for r in runs),
        "median_added_p99_ms_at_rate": statistics.median(r["added_p99_ms_at_rate"] for r in runs),
        "median_others_cores": statistics.median(r["others_cores"] for r in runs),
        "errors": int(sum(r["errors"] for r in runs)),
        "runs": runs,
    }


def choose(results: dict[str, dict[str, Any]], micro: dict[str, float]) -> dict[str, str]:
    """Each choice from the measurements that isolate it.

    Criteria: throughput, server CPU per request, added latency p50 at the fixed
    rate. The client is judged on the forwarder against the baseline (uvicorn +
    aiohttp + orjson) differing only in the client: a candidate wins on at least
    two of the three criteria. The server is judged on six (the three on the
    one-worker forwarder, the three on Seawall at its deployed worker count) and
    must win at least four to replace the baseline, since either measurement
    alone moved with the machine's noise. The JSON library is judged by the
    micro-benchmark of the JSON work itself: that work is a few microseconds of a
    request costing hundreds, below the run-to-run noise of end-to-end figures
    (their verdict is kept as ``json_end_to_end``, for the record).
    """
    forwarders = [r for r in results.values() if r["app"] == "forwarder"]
    seawall = [r for r in results.values() if r["app"] == "seawall"]
    baseline = {"server": "uvicorn", "client": "aiohttp", "json": "orjson"}

    def only(rows: list[dict[str, Any]], **changed: str) -> dict[str, Any] | None:
        wanted = baseline | changed
        found = [r for r in rows if all(r[k] == v for k, v in wanted.items())]
        return found[0] if found else None

    def pick(part: str, candidates: list[str], rows: list[list[dict[str, Any]]]) -> str:
        best = baseline[part]
        for other in candidates:
            pairs = [(only(r, **{part: other}), only(r, **{part: best})) for r in rows]
            measured = [(a, b) for a, b in pairs if a is not None and b is not None]
            # Two of three criteria per measurement: 2 of 3, or 4 of 6.
            if measured and sum(_wins(a, b) for a, b in measured) >= 2 * len(measured):
                best = other
        return best

    others = [s for s in PLAIN_SERVERS if s != "uvicorn" and only(forwarders, server=s)]
    return {
        "server": pick("server", others, [forwarders, seawall]),
        "client": pick("client", ["httpx"], [forwarders]),
        "json": min(micro, key=lambda name: micro[name]),
        "json_end_to_end": pick("json", ["json"], [forwarders]),
    }


def _wins(a: dict[str, Any], b: dict[str, Any]) -> int:
    """On how many criteria ``a`` beats ``b``."""
    criteria: list[bool] = [
        a["median_rate"] > b["median_rate"],
        a["median_server_cpu_us_per_request"] < b["median_server_cpu_us_per_request"],
        a["median_added_p50_ms_at_rate"] < b["median_added_p50_ms_at_rate"],
    ]
    return sum(criteria)


def print_table(results: dict[str, dict[str, Any]], micro: dict[str, float], rate: int) -> None:
    """The medians, one line per variant."""
    print(
        f"\n{'variant (xN: N workers)':48s} {'wrk c32':>8s} {'p99 ms':>7s} {'CPU us/req':>10s}"
        f" {'added p50/p99 ms at ' + str(rate) + '/s':>26s} {'others':>7s}"
    )
    for name, r in results.items():
        added = f"{r['median_added_p50_ms_at_rate']:.2f} / {r['median_added_p99_ms_at_rate']:.2f}"
        print(
            f"{name:48s} {r['median_rate']:8.0f} {r['median_p99_ms']:7.2f} "
            f"{r['median_server_cpu_us_per_request']:10.0f} {added:>26s} "
            f"{r['median_others_cores']:7.2f}"
        )
    for name, us in micro.items():
        print(f"JSON work per request, {name:8s} {us:6.1f} us")


def main(argv: list[str] | None = None) -> int:
    """Measure, choose, write the results, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk duration per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=int, default=200, help="fixed rate for added latency")
    parser.add_argument("--rate-seconds", type=float, default=5.0)
    parser.add_argument("--worker-counts", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument(
        "--seawall-workers", type=int, default=2, help="workers for the Seawall variants"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    stop_on_sigterm()
    info = machine_info()
    micro = json_micro()
    with (
        tempfile.TemporaryDirectory(prefix="seawall-stack-") as tmp,
        ProcessGroup(Path(tmp)) as group,
    ):
        results, workers = measure(args, Path(tmp), group)
    choice = choose(results, micro)
    report = {
        "machine": info,
        "method": {
            "upstream": "seawall simulate, zero latency, 127.0.0.1",
            "throughput": f"wrk -t1 -c{args.connections} -d{args.seconds:g}s, non-streaming POST "
            "/v1/chat/completions with a small JSON body, 1 s warm-up before each run",
            "added_latency": f"open loop at {args.rate} req/s for {args.rate_seconds:g} s "
            "(bench/loadgen.py), p50/p99 minus the simulator's own, measured directly in the "
            "same run",
            "server_cpu": "CPU time of the server's threads and processes (schedstat) per "
            "request during the wrk run",
            "workers": f"forwarders 1 worker; Seawall {args.seawall_workers} workers",
            "runs": args.runs,
            "figures": "median over runs",
            "cpu_pinning": "none",
        },
        "variants": results,
        "json_work_us_per_request": micro,
        "choice": choice,
        "seawall_workers": workers,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print_table(results, micro, args.rate)
    print_workers(workers, args.rate)
    print(f"\nchoice: {choice}\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
