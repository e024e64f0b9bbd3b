"""An open-loop HTTP load generator, run as its own process.

Open loop: request ``i`` is due at ``start + i / rate`` whatever happened to the
requests before it, and its latency is measured from that due time, not from
when it was actually sent, so queueing anywhere (server, network, this
generator) shows in the figures instead of silently lowering the rate
(no coordinated omission). Each request takes an idle keep-alive connection
or opens a new one. The generator reports how far its sends lagged behind the
schedule and the rate it achieved, so a generator that cannot keep up is seen.

Also a closed-loop "count" mode (exactly N requests over C connections, pausing
at checkpoints for the caller to inspect the server) for the memory run. Raw
asyncio on uvloop with httptools' parser keeps its own cost per request small.
Prints its result as one JSON object on stdout (after any checkpoint lines).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import httptools
import uvloop

_MAX_CONNECTIONS = 1024
_STREAM_MARK = b"data:"


@dataclass(slots=True)
class Exchange:
    """One request's outcome, in perf_counter seconds."""

    due: float
    sent: float = 0.0
    first_data: float | None = None
    done: float = 0.0
    status: int = 0


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection running one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: Exchange | None = None
        self.finished: asyncio.Future[None] | None = None
        self.reusable = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(error)

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self._fail(exc or ConnectionResetError("server closed the connection"))

    def on_headers_complete(self) -> None:
        assert self.exchange is not None
        self.exchange.status = self.parser.get_status_code()
        if not self.parser.should_keep_alive():
            self.reusable = False

    def on_body(self, body: bytes) -> None:
        exchange = self.exchange
        if exchange is not None and exchange.first_data is None and _STREAM_MARK in body:
            exchange.first_data = time.perf_counter()

    def on_message_complete(self) -> None:
        if self.exchange is not None:
            self.exchange.done = time.perf_counter()
        if self.finished is not None and not self.finished.done():
            self.finished.set_result(None)

    def _fail(self, error: Exception) -> None:
        self.reusable = False
        if self.finished is not None and not self.finished.done():
            self.finished.set_exception(error)

    async def run(self, request: bytes, exchange: Exchange) -> None:
        """Send one request and wait for the whole response."""
        assert self.transport is not None
        self.exchange = exchange
        self.finished = asyncio.get_running_loop().create_future()
        exchange.sent = time.perf_counter()
        self.transport.write(request)
        await self.finished


@dataclass(slots=True)
class Target:
    """Where requests go and the bytes of one request."""

    host: str
    port: int
    request: bytes
    idle: list[Connection] = field(default_factory=list)
    opened: int = 0
    errors: int = 0

    async def connection(self) -> Connection:
        """An idle keep-alive connection, or a new one."""
        while self.idle:
            conn = self.idle.pop()
            if conn.reusable:
                return conn
        if self.opened >= _MAX_CONNECTIONS:
            raise RuntimeError(f"more than {_MAX_CONNECTIONS} connections needed")
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(Connection, self.host, self.port)
        self.opened += 1
        return conn

    async def exchange(self, exchange: Exchange) -> None:
        """Run one exchange; failures are counted, never raised."""
        try:
            conn = await self.connection()
            await conn.run(self.request, exchange)
        except (OSError, httptools.HttpParserError, RuntimeError):
            self.errors += 1
            exchange.status = 0
            return
        if conn.reusable:
            self.idle.append(conn)
        elif conn.transport is not None:
            conn.transport.close()

    async def warm(self, connections: int) -> None:
        """Open connections ahead of time, all at once as wrk does, so the measurement
        does not pay for them (and a multi-process server's workers each accept some)."""
        opened = await asyncio.gather(*(self.connection() for _ in range(connections)))
        self.idle.extend(opened)

    def close(self) -> None:
        """Close every idle connection."""
        for conn in self.idle:
            if conn.transport is not None:
                conn.transport.close()
        self.idle.clear()


def build_request(url: str, body: bytes, key: str) -> tuple[str, int, bytes]:
    """Host, port and the raw bytes of a POST with a JSON body."""
    parts = urlsplit(url)
    if parts.hostname is None or parts.port is None:
        raise ValueError(f"the URL needs a host and a port: {url}")
    head = (
        f"POST {parts.path or '/'} HTTP/1.1\r\n"
        f"Host: {parts.hostname}:{parts.port}\r\n"
        "Content-Type: application/json\r\n"
        f"Authorization: Bearer {key}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return parts.hostname, parts.port, head.encode() + body


def percentile(ordered: list[float], q: float) -> float:
    """The q-th percentile (0-100) of sorted values, linearly interpolated."""
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _ms_summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(v * 1000 for v in values)
    return {
        "p50_ms": percentile(ordered, 50),
        "p90_ms": percentile(ordered, 90),
        "p99_ms": percentile(ordered, 99),
        "max_ms": ordered[-1] if ordered else float("nan"),
    }


async def fixed_rate(
    target: Target, rate: float, seconds: float, warmup_s: float, connections: int
) -> dict[str, Any]:
    """Open-loop: ``rate`` requests per second for ``warmup_s + seconds``; warm-up discarded."""
    await target.warm(connections)
    loop = asyncio.get_running_loop()
    skip = int(rate * warmup_s)
    total = skip + int(rate * seconds)
    exchanges = [Exchange(due=0.0) for _ in range(total)]
    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter() + 0.05
    for index, exchange in enumerate(exchanges):
        exchange.due = start + index / rate
        delay = exchange.due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(target.exchange(exchange)))
    await asyncio.gather(*tasks)
    measured = exchanges[skip:]
    ok = [e for e in measured if e.status == 200]
    sends = [e.sent for e in measured if e.sent]
    span = max(sends) - min(sends) if len(sends) > 1 else 0.0
    result: dict[str, Any] = {
        "mode": "fixed_rate",
        "target_rate": rate,
        "achieved_send_rate": (len(sends) - 1) / span if span > 0 else 0.0,
        "requests": len(measured),
        "ok": len(ok),
        "errors": len(measured) - len(ok),
        "connections_opened": target.opened,
        "latency": _ms_summary([e.done - e.due for e in ok]),
        "send_lag": _ms_summary([e.sent - e.due for e in measured if e.sent]),
    }
    firsts = [e.first_data - e.due for e in ok if e.first_data is not None]
    if firsts:
        result["first_data"] = _ms_summary(firsts)
    return result


async def closed_loop(target: Target, requests: int, concurrency: int) -> dict[str, Any]:
    """Exactly ``requests`` requests, ``concurrency`` at a time, as fast as they are answered."""
    remaining = requests
    ok = 0

    async def worker() -> None:
        nonlocal remaining, ok
        while remaining > 0:
            remaining -= 1
            exchange = Exchange(due=time.perf_counter())
            await target.exchange(exchange)
            ok += exchange.status == 200

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"requests": requests, "ok": ok, "errors": requests - ok, "rate": requests / elapsed}


async def counted(target: Target, checkpoints: list[int], concurrency: int) -> dict[str, Any]:
    """Closed loop up to each cumulative checkpoint on the same connections.

    At every checkpoint but the last, once no request is in flight, a JSON line
    ``{"checkpoint": N}`` is printed and the generator waits for a line on stdin,
    so the caller can look at the server while it is idle at exactly N requests.
    """
    await target.warm(concurrency)
    loop = asyncio.get_running_loop()
    done = 0
    segments: list[dict[str, Any]] = []
    for checkpoint in checkpoints:
        segment = await closed_loop(target, checkpoint - done, concurrency)
        done = checkpoint
        segments.append({"checkpoint": checkpoint, **segment})
        if checkpoint != checkpoints[-1]:
            print(json.dumps(segments[-1]), flush=True)
            await loop.run_in_executor(None, sys.stdin.readline)
    return {
        "mode": "count",
        "requests": done,
        "errors": sum(s["errors"] for s in segments),
        "connections_opened": target.opened,
        "segments": segments,
    }


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    body = args.body.encode()
    host, port, request = build_request(args.url, body, args.key)
    target = Target(host, port, request)
    try:
        if args.mode == "fixed":
            return await fixed_rate(target, args.rate, args.seconds, args.warmup, args.connections)
        return await counted(target, sorted(args.checkpoints), args.connections)
    finally:
        target.close()


def run_loadgen(
    mode: str,
    url: str,
    body: bytes,
    key: str,
    *options: str,
    prefix: Sequence[str] = (),
    at_checkpoint: Callable[[dict[str, Any]], None] | None = None,
) -> Any:
    """Run this generator in its own process (after ``prefix``, e.g. taskset); its result.

    ``at_checkpoint`` is called at each count-mode checkpoint while the generator waits.
    """
    command = [
        *prefix,
        *(sys.executable, str(Path(__file__).resolve()), mode, "--url", url),
        *("--body", body.decode(), "--key", key, *options),
    ]
    with (
        tempfile.TemporaryFile("w+") as errors,
        subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True
        ) as process,
    ):
        assert process.stdin is not None and process.stdout is not None
        lines = []
        try:
            for line in process.stdout:
                data = json.loads(line)
                if "checkpoint" in data and at_checkpoint is not None:
                    at_checkpoint(data)
                    process.stdin.write("\n")
                    process.stdin.flush()
                lines.append(data)
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        if process.returncode != 0 or not lines:
            errors.seek(0)
            raise RuntimeError(f"loadgen failed ({process.returncode}): {errors.read()[-2000:]}")
    return lines[-1]


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("mode", choices=["fixed", "count"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True, help="JSON request body")
    parser.add_argument("--key", default="bench")
    parser.add_argument("--rate", type=float, default=100.0, help="fixed: requests per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="fixed: measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="fixed: discarded seconds")
    parser.add_argument(
        "--checkpoints",
        type=int,
        nargs="+",
        default=[1000],
        help="count: cumulative request counts to pause at; the last one ends the run",
    )
    parser.add_argument(
        "--connections", type=int, default=16, help="fixed: opened in advance; count: concurrency"
    )
    args = parser.parse_args(argv)
    result = uvloop.run(_main(args))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
