"""``seawall simulate``: serve the fake OpenAI/Anthropic upstream until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable

import orjson

from seawall.errors import SeawallError
from seawall.simulator import Fault, FaultKind, SimulatorProfile, running_simulator
from seawall.simulator.profile import DEFAULT_OUTPUT_TOKENS

DEFAULT_PORT = 8900
# Long enough for in-flight streams to finish when the simulator is stopped.
_SHUTDOWN_SECONDS = 5.0

_DESCRIPTION = """\
Serve a simulated upstream that speaks OpenAI's API (/v1/chat/completions,
/v1/embeddings, /v1/models) and Anthropic's Messages API (/v1/messages), for
tests, chaos drills and benchmarks. Answers are deterministic for a request.

Faults are armed at start with --fault, or at any time over HTTP:
  POST   /_simulator/faults  {"fault": "rate_limit", "times": 2, "retry_after": 1.5,
                              "model": "only-this-model", "seconds": 3}
  DELETE /_simulator/faults  disarm all
  GET    /_simulator/stats   requests per path, faults injected per kind, answers
                             per status, capacity refusals, last request time

--capacity-rps caps model requests per second as a provider's rate limiter does:
requests over it get 429 with retry-after (whole seconds) and retry-after-ms.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``simulate`` subcommand; its ``func`` is :func:`run`."""
    parser = subparsers.add_parser(
        "simulate",
        help="serve a simulated OpenAI/Anthropic upstream with injectable faults",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="TCP port to listen on; 0 picks a free one (default: %(default)s)",
    )
    parser.add_argument(
        "--latency-ms",
        type=_non_negative(float),
        default=0.0,
        help="delay before the response headers, in milliseconds (default: %(default)s)",
    )
    parser.add_argument(
        "--ttft-ms",
        type=_non_negative(float),
        default=0.0,
        help="time to first token: delay between the headers and the first stream chunk, "
        "in milliseconds (default: %(default)s)",
    )
    parser.add_argument(
        "--tokens-per-second",
        type=_non_negative(float),
        default=0.0,
        help="pace of streamed tokens after the first; 0 sends them as fast as possible "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--output-tokens",
        type=_positive_int,
        default=DEFAULT_OUTPUT_TOKENS,
        help="length of an answer in tokens when max_tokens does not cut it (default: %(default)s)",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help="require this key (Authorization: Bearer, or x-api-key on /v1/messages); "
        "default: accept any",
    )
    parser.add_argument(
        "--capacity-rps",
        type=_non_negative(float),
        default=0.0,
        help="model requests admitted per second, on average; the rest get 429 as from "
        "a provider's rate limiter; 0 means unlimited (default: %(default)s)",
    )
    parser.add_argument(
        "--capacity-burst",
        type=_at_least_one,
        default=None,
        help="model requests admitted at once after a quiet spell (the bucket size); "
        "needs --capacity-rps (default: a tenth of --capacity-rps, at least 1)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        type=_fault,
        default=[],
        metavar="FAULT",
        help="arm a fault at start: a kind ("
        + ", ".join(kind.value for kind in FaultKind)
        + ") for every request, or a JSON object as the control API takes; repeatable",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; the exit status."""
    try:
        profile = SimulatorProfile(
            latency_ms=args.latency_ms,
            ttft_ms=args.ttft_ms,
            tokens_per_second=args.tokens_per_second,
            output_tokens=args.output_tokens,
            api_key=args.api_key,
            faults=tuple(args.fault),
            capacity_rps=args.capacity_rps,
            capacity_burst=args.capacity_burst,
        )
    except ValueError as exc:
        print(f"seawall simulate: {exc}", file=sys.stderr)
        return 2
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(_serve(profile, args.host, args.port))


async def _serve(profile: SimulatorProfile, host: str, port: int) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        async with running_simulator(
            profile, host, port, shutdown_timeout=_SHUTDOWN_SECONDS
        ) as simulator:
            print(f"Seawall simulator listening on {simulator.url}", flush=True)
            await stop.wait()
    except OSError as exc:
        print(f"seawall simulate: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _non_negative(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
        return value

    return parse


def _at_least_one(text: str) -> float:
    value = float(text)
    if not value >= 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _fault(text: str) -> Fault:
    try:
        data = orjson.loads(text) if text.lstrip().startswith("{") else {"fault": text}
        return Fault.from_json(data)
    except (orjson.JSONDecodeError, SeawallError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
