"""Time to ready: from spawning ``seawall serve`` to its first 200 from GET /health/ready.

Each run starts fresh processes (``python -m seawall.cli.main serve --config F --port P``,
one worker, output to a log file, an environment without OPENAI_*, ANTHROPIC_* or
SEAWALL_* variables) and polls the readiness probe every 10 ms with http.client:

* ``gateway``: ``local_models: false`` and one OpenAI-compatible deployment pointing at
  a port nothing listens on (readiness does not call upstreams), a new data directory
  each run, so the SQLite database is created and migrated as on a new instance;
* ``gateway-restart``: the same, on a data directory an earlier run already set up;
* ``embedded-default``: no ``deployments:``, the local models on (the bundled chat model
  and the embedder), a new data directory: time to ready, then, at once, one chat
  completion from the local chat model (max_tokens 1), timed from spawn to its answer,
  which includes loading the model on first use;
* ``baseline``: the floor here, a minimal ASGI app (200 on /health/ready) served by
  uvicorn with uvloop and httptools, same interpreter.

The variants are interleaved, each figure is the median of ``--runs`` runs (five by
default). Results go to ``bench/results/startup.json`` and a table is printed. Every
process started is stopped at the end, also on failure, Ctrl-C or SIGTERM.

    .venv/bin/python bench/startup.py            # about 30 seconds on 2 cores
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from machine import CpuWindow, machine_info
from processes import ProcessGroup, free_port, stop_on_sigterm
from seawall.config.defaults import LOCAL_CHAT_MODEL

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "startup.json"
MASTER_KEY = "sk-bench-startup-master-key-0123456789"
READY_BAR_S = 2.0
POLL_S = 0.01
WAIT_S = 60.0
_CLEARED_PREFIXES = ("OPENAI_", "ANTHROPIC_", "SEAWALL_")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

BASELINE_APP = """\
import sys

import uvicorn


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    status = 200 if scope["path"] == "/health/ready" else 404
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"status":"ready"}'})


uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), loop="uvloop",
            http="httptools", access_log=False, log_level="warning", lifespan="off")
"""


def clean_environment() -> dict[str, str]:
    """This process's environment without provider keys or Seawall overrides."""
    return {k: v for k, v in os.environ.items() if not k.startswith(_CLEARED_PREFIXES)}


def gateway_config(path: Path, data_dir: Path, dead_port: int) -> Path:
    """No local models; one OpenAI-compatible deployment at a port nothing listens on."""
    path.write_text(
        f"data_dir: {data_dir}\n"
        f"master_key: {MASTER_KEY}\n"
        "server:\n  log_level: warning\n"
        "local_models: false\n"
        "deployments:\n"
        "  remote-gpt:\n    provider: openai\n    model: gpt-4o-mini\n"
        f"    api_base: http://127.0.0.1:{dead_port}/v1\n    api_key: sk-unused\n"
        "models:\n  gpt-4o-mini: [remote-gpt]\n"
    )
    return path


def default_config(path: Path, data_dir: Path) -> Path:
    """The embedded default: no deployments, the local models on."""
    path.write_text(
        f"data_dir: {data_dir}\nmaster_key: {MASTER_KEY}\nserver:\n  log_level: warning\n"
    )
    return path


def get_status(port: int, path: str) -> int | None:
    """The HTTP status of GET ``path``, or None while nothing answers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def first_chat(port: int) -> int:
    """Send one chat completion to the local chat model; its HTTP status."""
    body = json.dumps(
        {
            "model": LOCAL_CHAT_MODEL,
            "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens": 1,
        }
    )
    headers = {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S)
    try:
        connection.request("POST", "/v1/chat/completions", body, headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def process_cpu_s(pid: int) -> float:
    """User plus system CPU seconds the process (all its threads, live or ended) used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def timed_start(
    group: ProcessGroup, name: str, command: list[str], port: int, chat: bool = False
) -> dict[str, float]:
    """Spawn, poll until ready, optionally send the first chat; seconds from spawn."""
    started = time.perf_counter()
    process = group.start(name, command, clean_environment())
    try:
        deadline = started + WAIT_S
        while get_status(port, "/health/ready") != 200:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with status {process.returncode}")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{name} was not ready within {WAIT_S:g}s")
            time.sleep(POLL_S)
        result = {"ready_s": time.perf_counter() - started}
        result["cpu_to_ready_s"] = process_cpu_s(process.pid)
        if chat:
            status = first_chat(port)
            if status != 200:
                raise RuntimeError(f"{name}: the first chat completion answered {status}")
            result["first_chat_s"] = time.perf_counter() - started
        return result
    except RuntimeError as error:
        raise RuntimeError(f"{error}\n{group.log(name)}") from None
    finally:
        group.stop(process)


def serve_command(config: Path) -> list[str]:
    """``seawall serve`` on ``config``, one worker; ``--port P`` follows."""
    return [sys.executable, "-m", "seawall.cli.main", "serve", "--config", str(config)]


def one_run(
    group: ProcessGroup, scratch: Path, run: int, dead_port: int
) -> dict[str, dict[str, float]]:
    """Each variant once, in turn."""
    variants = {
        "baseline": ([sys.executable, str(scratch / "baseline_app.py")], False),
        "gateway": (
            serve_command(
                gateway_config(scratch / "gateway.yaml", scratch / f"new-{run}", dead_port)
            ),
            False,
        ),
        "gateway-restart": (
            serve_command(gateway_config(scratch / "restart.yaml", scratch / "kept", dead_port)),
            False,
        ),
        "embedded-default": (
            serve_command(default_config(scratch / "default.yaml", scratch / f"default-{run}")),
            True,
        ),
    }
    result = {}
    for name, (command, chat) in variants.items():
        port = free_port()
        result[name] = timed_start(group, name, [*command, "--port", str(port)], port, chat)
    return result


def prepare(group: ProcessGroup, scratch: Path, dead_port: int) -> None:
    """Write the baseline app; set up the kept data directory (this also warms file caches)."""
    (scratch / "baseline_app.py").write_text(BASELINE_APP)
    config = gateway_config(scratch / "restart.yaml", scratch / "kept", dead_port)
    port = free_port()
    timed_start(group, "warm-up", [*serve_command(config), "--port", str(port)], port)


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max, in seconds to the millisecond."""
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def summarise(runs: list[dict[str, dict[str, float]]]) -> dict[str, Any]:
    """Per variant and figure: median, min, max over the runs; the bar and the ratio."""
    variants = {
        name: {figure: spread([run[name][figure] for run in runs]) for figure in figures}
        for name, figures in runs[0].items()
    }
    gateway = variants["gateway"]["ready_s"]["median"]
    baseline = variants["baseline"]["ready_s"]["median"]
    return {
        "variants": variants,
        "gateway_over_baseline": round(gateway / baseline, 2),
        "bars": {
            "gateway_ready_s": {
                "value": gateway,
                "limit": f"< {READY_BAR_S:g}",
                "met": gateway < READY_BAR_S,
            },
        },
    }


def method(runs: int) -> dict[str, str]:
    """How the figures were taken, for the JSON."""
    return {
        "start": "subprocess.Popen of the same interpreter, output to a log file, environment "
        "without OPENAI_*/ANTHROPIC_*/SEAWALL_*; `seawall serve --config F --port P`, 1 worker",
        "ready_s": "seconds from spawn to the first 200 from GET /health/ready, polled every "
        f"{POLL_S * 1000:g} ms with http.client (a new connection each poll)",
        "cpu_to_ready_s": "user + system CPU the server process used by then (/proc/PID/stat)",
        "first_chat_s": f"seconds from spawn to the answer of one chat completion to "
        f"{LOCAL_CHAT_MODEL} (max_tokens 1), sent as soon as ready; includes loading the model",
        "gateway": "local_models false, one openai deployment at a port nothing listens on, "
        "a new data_dir each run (SQLite created and migrated)",
        "gateway-restart": "the same, on a data_dir set up by an earlier start",
        "embedded-default": "no deployments, local models on (chat model and embedder), "
        "a new data_dir each run",
        "baseline": "minimal ASGI app, uvicorn with uvloop and httptools, lifespan off",
        "runs": f"{runs} runs, variants in turn within a run; figures are median, min and max",
        "others_cores": "CPU the rest of the machine (other users) used meanwhile, in cores",
    }


def print_table(report: dict[str, Any]) -> None:
    """Each variant's figures and the bar."""
    print(f"\n{'variant':<18}{'figure':<16}{'median s':>10}{'min s':>8}{'max s':>8}")
    for name, figures in report["variants"].items():
        for figure, value in figures.items():
            print(
                f"{name:<18}{figure:<16}{value['median']:>10.3f}"
                f"{value['min']:>8.3f}{value['max']:>8.3f}"
            )
    print(f"\ngateway ready / baseline ready: {report['gateway_over_baseline']:.2f}x")
    print(f"{'bar':<20}{'value':>8}  {'limit':>6}  met")
    for name, bar in report["bars"].items():
        verdict = "yes" if bar["met"] else "NO"
        print(f"{name:<20}{bar['value']:>8.3f}  {bar['limit']:>6}  {verdict}")


def main(argv: list[str] | None = None) -> int:
    """Time every variant ``--runs`` times, write the JSON, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    stop_on_sigterm()
    started = time.monotonic()
    info = machine_info()
    runs = []
    with (
        tempfile.TemporaryDirectory(prefix="seawall-startup-") as tmp,
        ProcessGroup(Path(tmp)) as group,
        CpuWindow({"bench": [os.getpid()]}) as window,
    ):
        scratch = Path(tmp)
        dead_port = free_port()
        prepare(group, scratch, dead_port)
        for run in range(1, args.runs + 1):
            result = one_run(group, scratch, run, dead_port)
            runs.append(result)
            print(
                f"run {run}  "
                + "  ".join(f"{name} {r['ready_s']:.3f} s" for name, r in result.items())
                + f"  first chat {result['embedded-default']['first_chat_s']:.3f} s",
                flush=True,
            )
    report = {
        "machine": info,
        "runs": args.runs,
        "duration_s": round(time.monotonic() - started),
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        "others_cores": round(window.others_cores, 2),
        "method": method(args.runs),
        **summarise(runs),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
