"""Choosing Seawall's HTTP server, upstream client and JSON library by measuring them.

Three measurements, all against the simulator at zero latency on 127.0.0.1:

1. A bare forwarder (``forwarder.py``: parse, POST upstream, parse, answer) in
   each combination that isolates one choice: uvicorn (httptools + uvloop) vs
   granian for the server, aiohttp vs httpx for the upstream client, orjson vs
   the standard library for JSON. (hypercorn is measured when it is installed.)
2. Seawall itself (the full pipeline with the SQLite record writer) under each
   server, since that is what the choice is for.
3. A micro-benchmark of the JSON work per request (decode the client body,
   encode the upstream body, decode the answer, encode it back).

Every server runs one worker so figures compare per-process efficiency; all
servers are started first and measured round-robin, ``--runs`` times, with wrk
at ``--connections``; each figure is the median over runs. Besides req/s the
server's CPU time per request is reported: it is less sensitive than req/s to
other work on a shared machine. Writes ``bench/results/stack_choice.json``.

    .venv/bin/python bench/stack_choice.py
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from machine import CpuWindow, machine_info
from processes import (
    ProcessGroup,
    descendants,
    free_port,
    stop_on_sigterm,
    wait_ready,
)
from wrk import run_wrk, write_script

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "stack_choice.json"
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


@dataclass(frozen=True, slots=True)
class Variant:
    """One server + client + JSON combination, serving the forwarder or Seawall."""

    app: str  # "forwarder" or "seawall"
    server: str
    client: str = "aiohttp"
    json: str = "orjson"

    @property
    def name(self) -> str:
        """A short label for tables and JSON keys."""
        return f"{self.app}: {self.server} + {self.client} + {self.json}"


def variants() -> list[Variant]:
    """The combinations measured; each differs from the baseline in one part."""
    found = [
        Variant("forwarder", "uvicorn"),
        Variant("forwarder", "uvicorn", client="httpx"),
        Variant("forwarder", "uvicorn", json="json"),
        Variant("forwarder", "granian"),
        Variant("seawall", "uvicorn"),
        Variant("seawall", "granian"),
    ]
    if importlib.util.find_spec("hypercorn") is not None:
        found.insert(4, Variant("forwarder", "hypercorn"))
    return found


def server_command(server: str, target: str, port: int) -> list[str]:
    """The command line serving the ASGI factory ``target`` with one worker."""
    host = ["--host", "127.0.0.1", "--port", str(port)]
    if server == "uvicorn":
        return [
            *(sys.executable, "-m", "uvicorn", target, "--factory", *host),
            *("--loop", "uvloop", "--http", "httptools", "--no-access-log"),
            *("--log-level", "warning"),
        ]
    if server == "granian":
        return [
            *(sys.executable, "-m", "granian", "--interface", "asgi", "--factory", *host),
            *("--loop", "uvloop", "--workers", "1", "--no-access-log"),
            *("--log-level", "warning", target),
        ]
    if server == "hypercorn":
        bind = f"127.0.0.1:{port}"
        # hypercorn calls a factory written as "module:factory()".
        return [sys.executable, "-m", "hypercorn", "--bind", bind, "-k", "uvloop", f"{target}()"]
    raise ValueError(server)


def seawall_config(directory: Path, upstream: str) -> Path:
    """A Seawall configuration with one public model served by the simulator."""
    path = directory / "seawall.yaml"
    path.write_text(
        f"data_dir: {directory / 'data'}\n"
        "server:\n  log_level: warning\n"
        "deployments:\n"
        "  sim-gpt:\n    provider: openai\n    model: gpt-4o-mini\n"
        f"    api_base: {upstream}/v1\n    api_key: sim-key\n"
        "models:\n  gpt-4o-mini: [sim-gpt]\n"
    )
    return path


def prepare_database(config: Path) -> None:
    """Apply migrations once, as ``seawall serve`` does before its workers start."""
    from seawall.config import load_from_environment
    from seawall.stores.migrate import upgrade

    settings = load_from_environment(config)
    asyncio.run(upgrade(settings.stores.database_url))


def start_variant(
    group: ProcessGroup, variant: Variant, upstream: str, config: Path
) -> tuple[str, int]:
    """Start one server; return its chat URL and process id."""
    port = free_port()
    env = dict(os.environ)
    if variant.app == "forwarder":
        env["PYTHONPATH"] = str(BENCH_DIR)
        env["FORWARDER_UPSTREAM"] = f"{upstream}/v1/chat/completions"
        env["FORWARDER_CLIENT"] = variant.client
        env["FORWARDER_JSON"] = variant.json
        target = "forwarder:forwarder_app"
    else:
        env["SEAWALL_CONFIG"] = str(config)
        env["SEAWALL_MASTER_KEY"] = MASTER_KEY
        target = "seawall.http.worker:create_app"
    name = variant.name.replace(": ", "-").replace(" + ", "-")
    process = group.start(name, server_command(variant.server, target, port), env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base}/v1/chat/completions", process)
    except RuntimeError as error:
        raise RuntimeError(f"{variant.name} did not start: {error}\n{group.log(name)}") from None
    return f"{base}/v1/chat/completions", process.pid


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
) -> dict[str, dict[str, Any]]:
    """Start the simulator and every variant, then measure them round-robin."""
    sim_port = free_port()
    simulator = group.start(
        "simulator", [sys.executable, "-m", "seawall.cli.main", "simulate", "--port", str(sim_port)]
    )
    upstream = f"http://127.0.0.1:{sim_port}"
    wait_ready(f"{upstream}/v1/models", simulator)
    config = seawall_config(scratch, upstream)
    prepare_database(config)
    script = write_script(scratch, orjson.dumps(CHAT_BODY), MASTER_KEY)
    servers = {v.name: (v, *start_variant(group, v, upstream, config)) for v in variants()}
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
    for run in range(args.runs):
        for name, (_, url, pid) in servers.items():
            run_wrk(url, script, connections=args.connections, seconds=1)  # warm-up
            groups = {"server": [pid, *descendants(pid)], "simulator": [simulator.pid]}
            with CpuWindow(groups) as window:
                result = run_wrk(url, script, connections=args.connections, seconds=args.seconds)
            sample = {
                "rate": result.rate,
                "p50_ms": result.p50_ms,
                "p99_ms": result.p99_ms,
                "server_cpu_us_per_request": window.cpu_s["server"] / result.requests * 1e6,
                "errors": float(result.errors),
                "others_cores": window.others_cores,
            }
            samples[name].append(sample)
            print(
                f"run {run + 1}  {name:42s} {result.rate:7.0f} req/s  "
                f"{sample['server_cpu_us_per_request']:5.0f} us CPU/req  "
                f"others {window.others_cores:.2f} cores",
                flush=True,
            )
    return {name: _summarise(servers[name][0], runs) for name, runs in samples.items()}


def _summarise(variant: Variant, runs: list[dict[str, float]]) -> dict[str, Any]:
    return {
        "app": variant.app,
        "server": variant.server,
        "client": variant.client,
        "json": variant.json,
        "workers": 1,
        "median_rate": statistics.median(r["rate"] for r in runs),
        "median_p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "median_p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "median_server_cpu_us_per_request": statistics.median(
            r["server_cpu_us_per_request"] for r in runs
        ),
        "median_others_cores": statistics.median(r["others_cores"] for r in runs),
        "errors": int(sum(r["errors"] for r in runs)),
        "runs": runs,
    }


def choose(results: dict[str, dict[str, Any]], micro: dict[str, float]) -> dict[str, str]:
    """Each choice from the measurement that isolates it (throughput, then CPU per request)."""

    def best(candidates: list[dict[str, Any]], key: str) -> str:
        top = max(candidates, key=lambda r: r["median_rate"])
        return str(top[key])

    seawall = [r for r in results.values() if r["app"] == "seawall"]
    forwarders = [r for r in results.values() if r["app"] == "forwarder"]
    baseline = {"server": "uvicorn", "client": "aiohttp", "json": "orjson"}

    def only(**changed: str) -> list[dict[str, Any]]:
        wanted = baseline | changed
        return [r for r in forwarders if all(r[k] == v for k, v in wanted.items())]

    clients = only() + only(client="httpx")
    codecs = only() + only(json="json")
    json_choice = best(codecs, "json")
    faster_micro = min(micro, key=lambda name: micro[name])
    return {
        "server": best(seawall, "server"),
        "client": best(clients, "client"),
        "json": json_choice
        if json_choice == faster_micro
        else f"{json_choice} (micro: {faster_micro})",
    }


def print_table(results: dict[str, dict[str, Any]], micro: dict[str, float]) -> None:
    """The medians, one line per variant."""
    print(
        f"\n{'variant (1 worker, wrk c32)':44s} {'req/s':>7s} {'p50 ms':>7s} {'p99 ms':>7s}"
        f" {'CPU us/req':>10s} {'others':>7s}"
    )
    for name, r in results.items():
        print(
            f"{name:44s} {r['median_rate']:7.0f} {r['median_p50_ms']:7.2f} "
            f"{r['median_p99_ms']:7.2f} {r['median_server_cpu_us_per_request']:10.0f} "
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
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    stop_on_sigterm()
    info = machine_info()
    micro = json_micro()
    with (
        tempfile.TemporaryDirectory(prefix="seawall-stack-") as tmp,
        ProcessGroup(Path(tmp)) as group,
    ):
        results = measure(args, Path(tmp), group)
    choice = choose(results, micro)
    report = {
        "machine": info,
        "method": {
            "upstream": "seawall simulate, zero latency, 127.0.0.1",
            "load": f"wrk -t1 -c{args.connections} -d{args.seconds:g}s, non-streaming POST "
            "/v1/chat/completions with a small JSON body, 1 s warm-up before each run",
            "workers_per_server": 1,
            "runs": args.runs,
            "figures": "median over runs; server CPU from /proc (all threads and children)",
            "cpu_pinning": "none",
        },
        "variants": results,
        "json_work_us_per_request": micro,
        "choice": choice,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print_table(results, micro)
    print(f"\nchoice: {choice}\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
