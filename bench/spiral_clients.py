"""The death-spiral benchmark's clients: an open-loop aiohttp load, optionally retrying naively.

Open loop: request ``i`` is due at ``start + i / rate`` whatever happened to the
requests before it, and its latency runs from that due time, so a server that
makes clients wait shows in the figures instead of lowering the offered rate.
A raw aiohttp session (no SDK, no SDK retries, no connection limit) keeps the
generator cheap at hundreds of requests per second. Each request has a deadline;
the naive retry loop (``attempts`` > 1) sleeps a fixed interval after a 429, a
5xx or a connection error and tries again while attempts and the deadline last.

``run_phase`` also watches the simulators: it resets their counters before the
load, takes their stats when the load window ends, the moment the last client
request is over, and again ``settle_s`` later, so retries that outlive their
clients are seen.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from machine import CpuWindow

DEADLINE_HEADER = "x-seawall-deadline-ms"
FALLBACK_HEADER = "x-seawall-fallback"
CHAT_PATH = "/v1/chat/completions"

# How each client request ended (its last attempt, for the naive retry loop).
SUCCESS = "success"
RATE_LIMITED_WITH_RETRY_AFTER = "429_with_retry_after"
UNAVAILABLE_WITH_RETRY_AFTER = "503_with_retry_after"
REFUSED_WITHOUT_RETRY_AFTER = "429_or_503_without_retry_after"
OTHER_STATUS = "other_status"
CONNECTION_ERROR = "connection_error"
HUNG = "hung_past_deadline"
OUTCOMES = (
    SUCCESS,
    RATE_LIMITED_WITH_RETRY_AFTER,
    UNAVAILABLE_WITH_RETRY_AFTER,
    REFUSED_WITHOUT_RETRY_AFTER,
    OTHER_STATUS,
    CONNECTION_ERROR,
    HUNG,
)
# The outcomes a well-behaved gateway may give: an answer, or a refusal saying when to come back.
ACCEPTABLE = (SUCCESS, RATE_LIMITED_WITH_RETRY_AFTER, UNAVAILABLE_WITH_RETRY_AFTER)

# Scheduling starts this far ahead so the first due time is not already late.
_LEAD_S = 0.05


@dataclass(frozen=True, slots=True)
class Load:
    """What the clients send: where, how fast, how long, with which deadline and retries."""

    url: str
    body: bytes
    headers: Mapping[str, str]
    rate: float
    duration_s: float
    deadline_s: float = 30.0
    # An answer arriving this soon after the deadline (a gateway's own deadline error) counts.
    grace_s: float = 1.0
    attempts: int = 1
    retry_sleep_s: float = 1.0
    send_deadline_header: bool = False


@dataclass(slots=True)
class Outcome:
    """One client request: perf_counter times, how it ended, how many attempts it made."""

    due: float
    sent: float = 0.0
    done: float = 0.0
    done_wall: float = 0.0
    kind: str = HUNG
    status: int = 0
    attempts: int = 0
    fallback_header: bool = False
    # The OpenAI-style error.code (or error.type) of a refusal or error answer.
    error_code: str = ""


@dataclass(slots=True)
class PhaseRecord:
    """Everything one load phase observed, before any figure is computed."""

    load: Load
    outcomes: list[Outcome]
    start: float
    # Simulator stats by moment ("window_end", "clients_done", "settled"), then by simulator.
    snapshots: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    last_done_wall: float = 0.0
    cpu_cores: dict[str, float] = field(default_factory=dict)


def classify(status: int, retry_after: bool) -> str:
    """The outcome of an answer with this status, with or without a Retry-After header."""
    if status == 200:
        return SUCCESS
    if status in (429, 503):
        if not retry_after:
            return REFUSED_WITHOUT_RETRY_AFTER
        return RATE_LIMITED_WITH_RETRY_AFTER if status == 429 else UNAVAILABLE_WITH_RETRY_AFTER
    return OTHER_STATUS


def _error_code(body: bytes) -> str:
    try:
        error = orjson.loads(body)["error"]
        return str(error.get("code") or error.get("type") or "")
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return "unparsable"


def _retryable(kind: str, status: int) -> bool:
    # The naive loop of the article: retry on 429, any 5xx and connection errors.
    return kind == CONNECTION_ERROR or status == 429 or status >= 500


async def _attempt(
    session: aiohttp.ClientSession, load: Load, outcome: Outcome, deadline: float
) -> None:
    remaining = deadline - time.perf_counter()
    headers = dict(load.headers)
    if load.send_deadline_header:
        headers[DEADLINE_HEADER] = str(max(1, int(remaining * 1000)))
    timeout = aiohttp.ClientTimeout(total=max(0.001, remaining + load.grace_s))
    outcome.attempts += 1
    # A retried request is judged by its last attempt alone.
    outcome.error_code, outcome.fallback_header = "", False
    try:
        async with session.post(
            load.url, data=load.body, headers=headers, timeout=timeout
        ) as response:
            body = await response.read()
            outcome.status = response.status
            if response.status != 200:
                outcome.error_code = _error_code(body)
            outcome.kind = classify(response.status, "retry-after" in response.headers)
            outcome.fallback_header = FALLBACK_HEADER in response.headers
    except TimeoutError:
        # aiohttp's timeouts subclass both TimeoutError and ClientError: catch them first.
        outcome.status, outcome.kind = 0, HUNG
    except (aiohttp.ClientError, OSError):
        outcome.status, outcome.kind = 0, CONNECTION_ERROR


async def _request(session: aiohttp.ClientSession, load: Load, outcome: Outcome) -> None:
    outcome.sent = time.perf_counter()
    deadline = outcome.due + load.deadline_s
    while True:
        await _attempt(session, load, outcome, deadline)
        again = outcome.attempts < load.attempts and _retryable(outcome.kind, outcome.status)
        if not again or time.perf_counter() + load.retry_sleep_s >= deadline:
            break
        await asyncio.sleep(load.retry_sleep_s)
    outcome.done = time.perf_counter()
    outcome.done_wall = time.time()


async def simulator_stats(
    control: aiohttp.ClientSession, simulators: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """GET /_simulator/stats of each simulator (name -> base URL), taken at once."""

    async def one(base: str) -> dict[str, Any]:
        async with control.get(f"{base}/_simulator/stats") as response:
            response.raise_for_status()
            stats: dict[str, Any] = await response.json()
            return stats

    names = list(simulators)
    found = await asyncio.gather(*(one(simulators[name]) for name in names))
    return dict(zip(names, found, strict=True))


async def run_phase(
    load: Load,
    simulators: Mapping[str, str],
    cpu_groups: Mapping[str, Sequence[int]],
    *,
    rest_s: float,
    settle_s: float,
    window_lag_s: float,
) -> PhaseRecord:
    """Rest, reset the simulators' counters, run the load, and watch the simulators.

    ``window_lag_s`` (the upstream's service time) delays the load-window snapshot
    so that requests admitted inside the window have been answered by then.
    """
    connector = aiohttp.TCPConnector(limit=0)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        aiohttp.ClientSession() as control,
    ):
        # The simulators' token buckets refill while nothing is sent.
        await asyncio.sleep(rest_s)
        for base in simulators.values():
            async with control.delete(f"{base}/_simulator/stats") as response:
                response.raise_for_status()
        loop = asyncio.get_running_loop()
        start = time.perf_counter() + _LEAD_S
        record = PhaseRecord(load=load, outcomes=[], start=start)

        async def window_snapshot() -> None:
            await asyncio.sleep(start + load.duration_s + window_lag_s - time.perf_counter())
            record.snapshots["window_end"] = await simulator_stats(control, simulators)

        watcher = loop.create_task(window_snapshot())
        tasks: list[asyncio.Task[None]] = []
        with CpuWindow(cpu_groups) as window:
            for index in range(round(load.rate * load.duration_s)):
                outcome = Outcome(due=start + index / load.rate)
                delay = outcome.due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                record.outcomes.append(outcome)
                tasks.append(loop.create_task(_request(session, load, outcome)))
            await asyncio.gather(*tasks)
        record.snapshots["clients_done"] = await simulator_stats(control, simulators)
        await watcher
        await asyncio.sleep(settle_s)
        record.snapshots["settled"] = await simulator_stats(control, simulators)
    record.last_done_wall = max(o.done_wall for o in record.outcomes)
    record.cpu_cores = {
        name: round(cpu / window.seconds, 3) for name, cpu in window.cpu_s.items()
    } | {"others": round(window.others_cores, 3)}
    return record
