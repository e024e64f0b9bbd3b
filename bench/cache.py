"""Response cache speed: an exact hit end to end, a semantic lookup, each against a miss.

Exact, end to end on 127.0.0.1: the simulator at zero latency (its own process) and
``seawall serve`` (2 workers, the default in-process cache), driven open loop at
``--rate`` requests per second (``loadgen.py``, its own process), in each run:

* ``direct``: the simulator itself, for reference;
* ``miss``: a temperature-0 request with ``"seawall_cache": "max-age=0"``: looked up,
  found too old, answered by the simulator and stored again: the whole miss path;
* ``hit``: the same request without that field: after the 1 s warm-up every request
  is answered from the cache.

Semantic, in this process pinned to one core, the embedder on one thread: 10,000
messages indexed in one context (unit vectors drawn at random: a search costs the
same whatever their values) and user messages of up to 64 tokens asked (the labelled
set's, plus long ones). Per message, the time of a semantic lookup
(``SemanticCache.find``: embed, search, near-miss check) against an exact miss (key
and store lookup), the path every cacheable request takes first.

Each figure is the median of ``--runs`` runs; results go to
``bench/results/cache.json`` and a table is printed. Every process started is stopped
at the end, also on failure, Ctrl-C or SIGTERM.

    .venv/bin/python bench/cache.py            # about 3 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from loadgen import run_loadgen
from machine import machine_info
from processes import ProcessGroup, free_port, stop_on_sigterm, wait_ready, wait_settled
from seawall.cache.embedder import LocalEmbedder
from seawall.cache.fields import exact_key
from seawall.cache.semantic import Question, SemanticCache
from seawall.cache.semantic_index import DIMENSIONS
from seawall.cache.store import MemoryCacheStore
from seawall.config.cache import SemanticSettings
from seawall.providers.local_embedding import SentenceEncoder
from seawall.providers.model_files import MINILM_ONNX, MINILM_TOKENIZER
from stack_variants import seawall_config

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "cache.json"
PAIRS = BENCH_DIR.parent / "tests" / "data" / "cache" / "semantic_pairs.jsonl"
MASTER_KEY = "sk-bench-cache-master-key-0123456789"
CHAT = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Say hello in five words."}],
    # Room for the simulator's whole answer: a truncated one ("length") is never kept.
    "max_tokens": 64,
    "temperature": 0,
}
EXACT_HIT_P50_MS = 1.0
SEMANTIC_LOOKUP_P50_MS = 15.0
LONG_MESSAGE = (
    "I am planning a two week trip through the north of Italy in late spring with my "
    "elderly parents, who walk slowly and tire quickly; which three or four towns should "
    "we stay in, how should we travel between them without renting a car, and which "
    "sights are worth it?"
)


def exact_runs(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Direct, miss and hit latency at ``args.rate``, run after run, on one stack."""
    runs = []
    with (
        tempfile.TemporaryDirectory(prefix="seawall-cache-") as tmp,
        ProcessGroup(Path(tmp)) as group,
    ):
        port = free_port()
        simulator = group.start(
            "simulator", [sys.executable, "-m", "seawall.cli.main", "simulate", "--port", str(port)]
        )
        direct = f"http://127.0.0.1:{port}"
        wait_ready(f"{direct}/v1/models", simulator)
        config = seawall_config(Path(tmp), direct, MASTER_KEY)
        port = free_port()
        command = [sys.executable, "-m", "seawall.cli.main", "serve", "--config", str(config)]
        seawall = group.start("seawall", [*command, "--port", str(port), "--workers", "2"])
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/health/ready", seawall, any_status=False)
        wait_settled(seawall.pid, 2)
        hit = orjson.dumps(CHAT)
        miss = orjson.dumps({**CHAT, "seawall_cache": "max-age=0"})
        for run in range(1, args.runs + 1):
            measured = {}
            for name, url, body in (
                ("direct", direct, hit),
                ("miss", base, miss),
                ("hit", base, hit),
            ):
                if name != "direct":
                    # Each worker answers once first; then every answer must be the kind measured.
                    for _ in range(4):
                        seen = cache_result(base, body)
                    expected = "hit-exact" if name == "hit" else "miss"
                    if seen != expected:
                        raise RuntimeError(f"the {name} request was answered {seen!r}")
                result = run_loadgen(
                    "fixed",
                    f"{url}/v1/chat/completions",
                    body,
                    MASTER_KEY,
                    *("--rate", str(args.rate), "--seconds", f"{args.seconds:g}", "--warmup", "1"),
                )
                measured[name] = {
                    "p50_ms": result["latency"]["p50_ms"],
                    "p99_ms": result["latency"]["p99_ms"],
                    "errors": result["errors"],
                    "achieved_send_rate": result["achieved_send_rate"],
                }
            runs.append(measured)
            print(
                f"run {run}  {args.rate} req/s  p50 direct {measured['direct']['p50_ms']:.2f}  "
                f"miss {measured['miss']['p50_ms']:.2f}  hit {measured['hit']['p50_ms']:.2f} ms",
                flush=True,
            )
    return runs


def cache_result(base: str, body: bytes) -> str | None:
    """The x-seawall-cache header of one chat request."""
    request = urllib.request.Request(
        f"{base}/v1/chat/completions",
        data=body,
        headers={"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers.get("x-seawall-cache")


def semantic_runs(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Semantic lookup and exact miss times per message, pinned to one core."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    pairs = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    messages = [pair["b"] for pair in pairs][: args.queries - 20] + [LONG_MESSAGE] * 20
    encoder = SentenceEncoder(MINILM_ONNX.require(), MINILM_TOKENIZER.require(), 1)
    tokens = max(encoder.encode([message])[1] for message in messages)
    runs = []
    for run in range(1, args.runs + 1):
        result = asyncio.run(_semantic_run(LocalEmbedder(), messages, args.entries))
        result["longest_message_tokens"] = tokens
        runs.append(result)
        print(
            f"run {run}  semantic lookup p50 {result['semantic_lookup_p50_ms']:.2f} ms  "
            f"exact miss p50 {result['exact_miss_p50_ms'] * 1000:.1f} us  "
            f"({args.entries} entries, {len(messages)} messages)",
            flush=True,
        )
    return runs


async def _semantic_run(
    embedder: LocalEmbedder, messages: list[str], entries: int
) -> dict[str, Any]:
    semantic = SemanticCache(SemanticSettings(max_entries=entries), embedder)
    store = MemoryCacheStore(max_entries=entries, max_bytes=1 << 30, now=time.time)
    rng = np.random.default_rng(7)
    context = exact_key("tenant=bench", "gpt-4o-mini", {**CHAT, "messages": []})
    for i in range(entries):
        vector = rng.standard_normal(DIMENSIONS).astype(np.float32)
        semantic.index.add(context, f"k{i}", f"stored message {i}", vector / np.linalg.norm(vector))
    await semantic.find(Question(context, messages[0]))  # the model loads once, not measured
    lookups, misses = [], []
    for text in messages:
        body = {**CHAT, "messages": [{"role": "user", "content": text}]}
        started = time.perf_counter()
        await store.get(exact_key("tenant=bench", "gpt-4o-mini", body))
        misses.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        await semantic.find(Question(context, text))
        lookups.append((time.perf_counter() - started) * 1000)
    await embedder.aclose()
    return {
        "semantic_lookup_p50_ms": statistics.median(lookups),
        "semantic_lookup_p99_ms": float(np.percentile(lookups, 99)),
        "exact_miss_p50_ms": statistics.median(misses),
        "indexed_entries": len(semantic.index),
        "messages": len(messages),
    }


def summarise(exact: list[dict[str, Any]], semantic: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over runs, and the bars."""

    def median(values: list[float]) -> float:
        return float(statistics.median(values))

    end_to_end = {
        name: {
            "p50_ms": median([run[name]["p50_ms"] for run in exact]),
            "p99_ms": median([run[name]["p99_ms"] for run in exact]),
            "errors": sum(run[name]["errors"] for run in exact),
        }
        for name in ("direct", "miss", "hit")
    }
    lookup = {
        key: median([run[key] for run in semantic])
        for key in ("semantic_lookup_p50_ms", "semantic_lookup_p99_ms", "exact_miss_p50_ms")
    }
    hit, lookup_p50 = end_to_end["hit"]["p50_ms"], lookup["semantic_lookup_p50_ms"]
    return {
        "exact_end_to_end": end_to_end,
        "semantic_lookup": {
            **lookup,
            "longest_message_tokens": semantic[0]["longest_message_tokens"],
        },
        "bars": {
            "exact_hit_p50_ms_at_200_rps": {
                "value": hit,
                "limit": f"<= {EXACT_HIT_P50_MS:g}",
                "met": hit <= EXACT_HIT_P50_MS,
            },
            "semantic_lookup_p50_ms_one_core_10k_entries": {
                "value": lookup_p50,
                "limit": f"<= {SEMANTIC_LOOKUP_P50_MS:g}",
                "met": lookup_p50 <= SEMANTIC_LOOKUP_P50_MS,
            },
        },
    }


def print_table(report: dict[str, Any]) -> None:
    """The figures as a table."""
    rows = report["exact_end_to_end"]
    print(f"\nResponse cache (median of {report['runs']} runs)")
    print(f"{'end to end at ' + str(report['rate']) + ' req/s':<28}{'p50 ms':>10}{'p99 ms':>10}")
    for name, label in (("direct", "simulator direct"), ("miss", "miss"), ("hit", "exact hit")):
        print(f"{label:<28}{rows[name]['p50_ms']:>10.2f}{rows[name]['p99_ms']:>10.2f}")
    lookup = report["semantic_lookup"]
    print(f"\nin process, one core, {report['semantic_entries']} entries")
    print(f"{'exact miss (key + lookup)':<28}{lookup['exact_miss_p50_ms']:>10.3f}")
    print(
        f"{'semantic lookup':<28}{lookup['semantic_lookup_p50_ms']:>10.2f}"
        f"{lookup['semantic_lookup_p99_ms']:>10.2f}"
    )
    print("\nbars")
    for name, bar in report["bars"].items():
        verdict = "met" if bar["met"] else "NOT MET"
        print(f"  {name:<46}{bar['value']:>8.2f}  {bar['limit']:>8}  {verdict}")


def main(argv: list[str] | None = None) -> int:
    """Run both parts, write the JSON, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    stop_on_sigterm()
    started = time.monotonic()
    info = machine_info()
    exact = exact_runs(args)
    semantic = semantic_runs(args)
    report = {
        "machine": info,
        "runs": args.runs,
        "rate": args.rate,
        "semantic_entries": args.entries,
        "duration_s": round(time.monotonic() - started),
        "method": {
            "exact": "seawall serve --workers 2 (default in-process cache) in front of seawall "
            "simulate at zero latency, open loop (bench/loadgen.py) at the rate for "
            f"{args.seconds:g} s after 1 s of warm-up; miss: the request with "
            "'seawall_cache': 'max-age=0' (looked up, too old, answered upstream, stored); "
            "hit: the same request without it; direct: the simulator itself",
            "semantic": "in process, pinned to one core, embedder on one thread; "
            f"{args.entries} random unit vectors indexed in one context; per message, "
            "SemanticCache.find (embed + search + near-miss check) and, for comparison, "
            "the exact miss (key + in-process store lookup); messages: the labelled set's "
            "second messages plus a long one",
            "figures": "median of the runs",
        },
        **summarise(exact, semantic),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
