"""Seawall's failure handling under overload and outage: the retry death spiral and failover.

Scenario A, for each upstream capacity C (``--rates``): ``seawall simulate
--capacity-rps C --latency-ms 50`` admits C requests per second (token bucket,
burst C/10) and answers the rest 429 with Retry-After. Clients offer 2C req/s
open loop for ``--duration`` seconds, each request with a 30 s deadline, and
the same load runs (a) from a naive client straight at the simulator (up to 5
attempts, a fixed 1 s sleep after a 429, 5xx or connection error), (b) through
Seawall with the deployment's rate not configured (it must learn it from the
429s), (c) through Seawall with ``limits: {rpm: 120*C}``, twice the real
capacity. Seawall is restarted for every measured phase, so nothing learned
carries over.

Scenario B: a primary simulator answering 503 to everything and a healthy
backup; a fixed-rate load through Seawall (``gpt-4o-mini: [primary, backup]``)
and the same load straight at the backup; latency after the breaker opened.

Every figure is the median of ``--runs`` runs; the result goes to
``bench/results/death_spiral.json`` and a table with PASS/FAIL marks is printed.
Everything runs on 127.0.0.1; every process started is stopped at the end, also
on failure, Ctrl-C or SIGTERM.

    .venv/bin/python bench/death_spiral.py            # about 25 minutes on 2 cores
    .venv/bin/python bench/death_spiral.py --quick    # about 2 minutes, for development
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvloop

from machine import machine_info
from processes import ProcessGroup, descendants, stop_on_sigterm
from spiral_clients import CHAT_PATH, Load, PhaseRecord, run_phase
from spiral_report import (
    CONFIGURED_2X,
    LABELS,
    NAIVE,
    SEAWALL_CONFIGS,
    generator_bar,
    medians,
    print_table,
    scenario_a_bars,
    scenario_a_figures,
    scenario_b_bars,
    scenario_b_figures,
)
from spiral_stack import (
    CHAT,
    MASTER_KEY,
    SERVICE_MS,
    arm_fault,
    start_seawall,
    start_simulator,
    warm_up,
)

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "death_spiral.json"
NAIVE_ATTEMPTS = 5
NAIVE_SLEEP_S = 1.0


class Bench:
    """Starts the simulators and Seawall for each phase and runs the phases."""

    def __init__(self, group: ProcessGroup, scratch: Path, args: argparse.Namespace) -> None:
        self._group = group
        self._scratch = scratch
        self._args = args
        self._started = 0

    def simulator(self, name: str, *options: str) -> tuple[str, subprocess.Popen[bytes]]:
        """A simulator for this benchmark; its base URL and process."""
        return start_simulator(self._group, name, *options)

    def seawall(
        self, name: str, upstreams: dict[str, str], rpm: int | None
    ) -> tuple[str, subprocess.Popen[bytes]]:
        """A fresh Seawall (new process, new data directory); its base URL and process."""
        self._started += 1
        directory = self._scratch / f"seawall-{self._started}"
        return start_seawall(self._group, name, directory, upstreams, rpm)

    def phase(
        self, load: Load, simulators: dict[str, str], pids: dict[str, list[int]]
    ) -> PhaseRecord:
        """One measured load phase, with the simulators' counters reset first."""
        groups = {"load generator": [os.getpid()], **pids}
        return uvloop.run(
            run_phase(
                load,
                simulators,
                groups,
                rest_s=self._args.rest,
                settle_s=self._args.settle,
                window_lag_s=SERVICE_MS / 1000,
            )
        )

    def scenario_a(self, capacity: int) -> dict[str, Any]:
        """The three configurations at upstream capacity ``capacity``, run after run."""
        args = self._args
        base, simulator = self.simulator(f"simulator-c{capacity}", "--capacity-rps", str(capacity))
        upstream = {"upstream": base}
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in (NAIVE, *SEAWALL_CONFIGS)}
        for run in range(1, args.runs + 1):
            naive = Load(
                url=base + CHAT_PATH,
                body=CHAT,
                headers={"Authorization": "Bearer sim-key", "Content-Type": "application/json"},
                rate=2 * capacity,
                duration_s=args.duration,
                attempts=NAIVE_ATTEMPTS,
                retry_sleep_s=NAIVE_SLEEP_S,
            )
            record = self.phase(naive, upstream, {"simulator": [simulator.pid]})
            runs[NAIVE].append(scenario_a_figures(record, capacity))
            _say(run, capacity, NAIVE, runs[NAIVE][-1])
            for name in SEAWALL_CONFIGS:
                rpm = 120 * capacity if name == CONFIGURED_2X else None
                label = f"seawall-c{capacity}-run{run}-{name[0]}"
                seawall_base, seawall = self.seawall(label, upstream, rpm)
                warm_up(seawall_base)
                pids = {"simulator": [simulator.pid], "seawall": _tree(seawall.pid)}
                record = self.phase(_through_seawall(naive, seawall_base), upstream, pids)
                self._group.stop(seawall)
                runs[name].append(scenario_a_figures(record, capacity))
                _say(run, capacity, name, runs[name][-1])
        self._group.stop(simulator)
        out: dict[str, Any] = {}
        for name, figures in runs.items():
            out[name] = {"median": medians(figures), "runs": figures}
            if name in SEAWALL_CONFIGS:
                out[name]["bars"] = scenario_a_bars(out[name])
        return out

    def scenario_b(self) -> dict[str, Any]:
        """Failover from an always-503 primary to a healthy backup, run after run."""
        args = self._args
        primary, primary_process = self.simulator("simulator-b-primary")
        arm_fault(primary, {"fault": "unavailable"})
        backup, backup_process = self.simulator("simulator-b-backup")
        sims = {"primary": primary, "backup": backup}
        sim_pids = {"simulators": [primary_process.pid, backup_process.pid]}
        direct_load = Load(
            url=backup + CHAT_PATH,
            body=CHAT,
            headers={"Authorization": "Bearer sim-key", "Content-Type": "application/json"},
            rate=args.b_rate,
            duration_s=args.b_duration,
        )
        runs = []
        for run in range(1, args.runs + 1):
            direct = self.phase(direct_load, sims, sim_pids)
            base, seawall = self.seawall(f"seawall-b-run{run}", sims, None)
            pids = sim_pids | {"seawall": _tree(seawall.pid)}
            through = self.phase(_through_seawall(direct_load, base), sims, pids)
            self._group.stop(seawall)
            runs.append(scenario_b_figures(direct, through, args.b_skip))
            figures = runs[-1]
            direct_p99, seawall_p99 = figures["direct_p99_ms"], figures["seawall_p99_ms"]
            print(
                f"run {run}  B failover  success {figures['success_share_through_seawall']:.1%}  "
                f"p99 direct {direct_p99 or float('nan'):.1f} ms -> seawall "
                f"{seawall_p99 or float('nan'):.1f} ms  fallback headers "
                f"{figures['requests_with_fallback_header']}  primary attempts "
                f"{figures['primary_attempts']}",
                flush=True,
            )
        self._group.stop(primary_process)
        self._group.stop(backup_process)
        summary: dict[str, Any] = {"median": medians(runs), "runs": runs}
        summary["bars"] = scenario_b_bars(summary)
        return summary


def _through_seawall(load: Load, base: str) -> Load:
    headers = {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"}
    return Load(
        url=base + CHAT_PATH,
        body=load.body,
        headers=headers,
        rate=load.rate,
        duration_s=load.duration_s,
        deadline_s=load.deadline_s,
        send_deadline_header=True,
    )


def _tree(pid: int) -> list[int]:
    return [pid, *descendants(pid)]


def _say(run: int, capacity: int, name: str, figures: dict[str, Any]) -> None:
    late = figures["upstream_last_attempt_after_clients_done_s"]
    outcomes = {k: v for k, v in figures["client_outcomes"].items() if v}
    print(
        f"run {run}  C={capacity:<4d} {LABELS[name]:28s} "
        f"sent {figures['achieved_offered_rps']:6.1f}/s  "
        f"amplification {figures['amplification']:.2f}  "
        f"429 share {figures['upstream_429_share']:.0%}  "
        f"goodput {figures['goodput_fraction_of_capacity']:.0%}  "
        f"outcomes {outcomes}  p99 {figures['client_latency_all_p99_ms']:.0f} ms  "
        f"last attempt after done {'n/a' if late is None else f'{late:+.2f} s'}",
        flush=True,
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; defaults give the published figures, --quick a short check."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, help="runs per configuration (default 3)")
    parser.add_argument("--duration", type=float, help="scenario A load seconds (default 60)")
    parser.add_argument(
        "--rates", help="upstream capacities C in req/s, comma separated (default 30,200)"
    )
    parser.add_argument("--b-rate", type=float, default=50.0, help="scenario B req/s")
    parser.add_argument("--b-duration", type=float, help="scenario B load seconds (default 20)")
    parser.add_argument(
        "--b-skip", type=float, default=5.0, help="scenario B seconds before the breaker is open"
    )
    parser.add_argument(
        "--rest", type=float, default=2.0, help="idle seconds before each phase (bucket refill)"
    )
    parser.add_argument(
        "--settle", type=float, default=2.0, help="seconds to watch the upstream after clients end"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="development: 10 s loads, 1 run, C=30 (explicit options still win)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    quick = args.quick
    args.runs = args.runs or (1 if quick else 3)
    args.duration = args.duration or (10.0 if quick else 60.0)
    args.b_duration = args.b_duration or (10.0 if quick else 20.0)
    args.rates = [int(r) for r in (args.rates or ("30" if quick else "30,200")).split(",")]
    if args.b_skip >= args.b_duration:
        parser.error("--b-skip must be shorter than --b-duration")
    return args


def method(args: argparse.Namespace) -> dict[str, str]:
    """How each figure was measured, with this run's settings."""
    return {
        "upstream": f"seawall simulate --latency-ms {SERVICE_MS:g} --capacity-rps C (token bucket "
        "of C req/s, burst C/10, refusals are 429 with retry-after in whole seconds and "
        "retry-after-ms), its own process, 127.0.0.1",
        "seawall": "seawall serve --config FILE --workers 1, master key from SEAWALL_MASTER_KEY, "
        "local_models: false, log_level warning, a fresh process and data directory for every "
        "measured phase",
        "load": f"open loop, raw aiohttp (no SDK, no SDK retries, no connection limit) in the "
        f"benchmark's process on uvloop: request i due at start + i/(2C); non-streaming chat "
        f"completion, max_tokens 8; {args.duration:g} s per phase",
        "deadline": "30 s per client request from its due time; through Seawall the header "
        "x-seawall-deadline-ms carries the time left when sent (about 30000); an answer up to "
        "1 s after the deadline still counts (e.g. Seawall's own deadline error), after that "
        "the request is 'hung_past_deadline'",
        "naive_client": f"up to {NAIVE_ATTEMPTS} attempts, a fixed {NAIVE_SLEEP_S:g} s sleep "
        "after a 429, 5xx or connection error, within the deadline; its outcome is its last "
        "attempt's",
        "phase": f"{args.rest:g} s rest (the bucket refills), simulator stats reset, load, "
        f"stats when the last client request ended, again {args.settle:g} s later",
        "amplification": "upstream chat attempts (simulator, after the settle wait) / client "
        "requests",
        "upstream_429_share": "capacity_refusals / upstream attempts",
        "goodput_fraction_of_capacity": "upstream 200 answers counted at the end of the load "
        f"window (+{SERVICE_MS:g} ms service time), per second of the window, divided by C",
        "upstream_last_attempt_after_clients_done_s": "simulator last_request_at minus the "
        "wall-clock moment the last client request ended (negative: before it)",
        "upstream_attempts_after_clients_done": "upstream attempts counted between the moment "
        f"the last client request ended and {args.settle:g} s later",
        "client_latency": "from the due time to the end of the request (all attempts), p50/p99 "
        "over all requests and over successes",
        "scenario_b": f"primary simulator armed with the 'unavailable' fault (503) for every "
        f"request, backup healthy, both --latency-ms {SERVICE_MS:g}; {args.b_rate:g} req/s for "
        f"{args.b_duration:g} s straight at the backup, then through a fresh Seawall "
        f"(models gpt-4o-mini: [primary, backup]); latency of successes due after the first "
        f"{args.b_skip:g} s; added = Seawall minus direct, per run",
        "cpu_cores_during_load": "CPU used per process group from the first send to the last "
        "answer, in cores; 'others' is the rest of the machine (approximate)",
        "bars": "applied to the medians over runs, except the client-outcome and scenario-B "
        "success bars, which count every request of every run",
        "figures": "median of the runs; per-run figures under 'runs'",
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run both scenarios, write the JSON, print the table."""
    args = parse_args(argv)
    stop_on_sigterm()
    started = time.monotonic()
    report: dict[str, Any] = {
        "benchmark": "death_spiral",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command_line": shlex.join([sys.executable, *sys.argv]),
        "machine": machine_info(),
        "settings": {
            "runs": args.runs,
            "duration_s": args.duration,
            "capacities_rps": args.rates,
            "offered_rps": [2 * c for c in args.rates],
            "deadline_s": 30.0,
            "service_latency_ms": SERVICE_MS,
            "b_rate_rps": args.b_rate,
            "b_duration_s": args.b_duration,
            "b_skip_s": args.b_skip,
            "quick": args.quick,
        },
        "method": method(args),
    }
    with (
        tempfile.TemporaryDirectory(prefix="seawall-death-spiral-") as tmp,
        ProcessGroup(Path(tmp)) as group,
    ):
        bench = Bench(group, Path(tmp), args)
        report["scenario_a"] = {str(c): bench.scenario_a(c) for c in args.rates}
        report["scenario_b"] = bench.scenario_b()
    report["duration_s"] = round(time.monotonic() - started)
    report["generator_kept_up"] = generator_bar(report)
    report["bars"] = {
        f"scenario_a/C={capacity}/{name}/{bar}": figures
        for capacity, by_config in report["scenario_a"].items()
        for name, config in by_config.items()
        for bar, figures in config.get("bars", {}).items()
    } | {f"scenario_b/{bar}": figures for bar, figures in report["scenario_b"]["bars"].items()}
    report["all_bars_met"] = all(bar["met"] for bar in report["bars"].values())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
