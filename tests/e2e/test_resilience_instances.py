"""Failure handling across real processes: shared breakers and budgets, Redis outages, leavers.

Two ``seawall serve`` processes share the Redis at 127.0.0.1:6379 and must agree on
breaker state and provider budgets; their deployment names carry a random suffix
because every Redis key includes the deployment name, and the keys are deleted at the
end. The outage test runs its own ``redis-server`` on a free port and stops it mid-run.
Upstreams are ``seawall simulate`` processes, one that fails on demand (``primary``)
and one that answers (``backup``), so each upstream's request count is its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis

from tests.e2e.conftest import MASTER_KEY
from tests.e2e.instances import (
    CHAT,
    Simulator,
    eventually,
    sdk,
    seawall_process,
    simulator_process,
)
from tests.e2e.processes import ServerProcess
from tests.ports import free_port
from tests.private_redis import PrivateRedis
from tests.stores.tcp_proxy import pipe

SHARED_REDIS = "redis://127.0.0.1:6379/0"
BREAKER = "resilience: {breaker: {min_requests: 4, failure_rate: 0.5, open_seconds: 60}}"
# More than enough requests to trip a breaker that opens after 4 failures out of 4.
MAX_TO_TRIP = 10


def chat(client: openai.OpenAI, model: str) -> Mapping[str, str]:
    """One successful chat completion; the response headers."""
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "ping"}]
    )
    assert raw.http_response.status_code == 200
    return raw.headers


def trip_breaker(client: openai.OpenAI, model: str) -> list[str | None]:
    """Send requests until one is answered without a fallback; each one's fallback header."""
    fallbacks: list[str | None] = []
    for _ in range(MAX_TO_TRIP):
        fallbacks.append(chat(client, model).get("x-seawall-fallback"))
        if fallbacks[-1] is None:
            return fallbacks
    pytest.fail(f"the breaker never opened; fallback headers: {fallbacks}")


def delete_keys(client: redis.Redis, pattern: str) -> None:
    """Delete every key matching ``pattern``."""
    keys = list(client.scan_iter(match=pattern, count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="module")
def suffix() -> str:
    """Makes this run's deployment names, and so its Redis keys, unique."""
    return secrets.token_hex(4)


@pytest.fixture(scope="module")
def primary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """The upstream that tests make fail."""
    with simulator_process(tmp_path_factory.mktemp("primary") / "sim.log") as simulator:
        yield simulator


@pytest.fixture(scope="module")
def backup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """The upstream that always answers."""
    with simulator_process(tmp_path_factory.mktemp("backup") / "sim.log") as simulator:
        yield simulator


@dataclass(frozen=True)
class Pair:
    """Two Seawall instances sharing one Redis, and their deployments' names."""

    a: ServerProcess
    b: ServerProcess
    primary: str
    backup: str
    paced: str


@pytest.fixture(scope="module")
def pair(
    suffix: str, primary: Simulator, backup: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    """Instances A and B with the same configuration and the shared Redis."""
    first, second, paced = f"primary-{suffix}", f"backup-{suffix}", f"paced-{suffix}"
    config = f"""
stores: {{redis_url: "{SHARED_REDIS}"}}
{BREAKER}
deployments:
  {first}: {{provider: openai, model: {first}, api_base: "{primary.url}/v1"}}
  {second}: {{provider: openai, model: gpt-4o-mini, api_base: "{backup.url}/v1"}}
  {paced}:
    provider: openai
    model: gpt-4o-mini
    api_base: "{backup.url}/v1"
    limits: {{rpm: 60, burst_seconds: 0.01}}
models:
  guarded: [{first}, {second}]
  paced: [{paced}]
"""
    root = tmp_path_factory.mktemp("pair")
    shared = redis.Redis.from_url(SHARED_REDIS)
    try:
        with (
            seawall_process(root / "a", config) as a,
            seawall_process(root / "b", config) as b,
        ):
            yield Pair(a, b, first, second, paced)
    finally:
        delete_keys(shared, f"seawall:*{suffix}*")
        shared.close()


def test_instances_sharing_redis_agree_that_a_breaker_is_open(
    pair: Pair, primary: Simulator
) -> None:
    primary.arm(fault="unavailable", model=pair.primary)
    with (
        contextlib.closing(redis.Redis.from_url(SHARED_REDIS)) as shared,
        sdk(pair.a) as a,
        sdk(pair.b) as b,
    ):
        try:
            fallbacks = trip_breaker(a, "guarded")
            # Until the breaker opened, each answer on A came from backup after primary failed.
            assert fallbacks[:-1] and set(fallbacks[:-1]) == {f"{pair.primary},{pair.backup}"}
            breaker = shared.hgetall(f"seawall:breaker:{pair.primary}")
            assert breaker.get(b"state") == b"open"

            sent_to_primary = primary.chat_requests()
            answers = [chat(b, "guarded") for _ in range(5)]
            assert [h.get("x-seawall-deployment") for h in answers] == [pair.backup] * 5
            assert [h.get("x-seawall-fallback") for h in answers] == [None] * 5
            # B learned from A that primary is failing: it never tried primary itself.
            assert primary.chat_requests() == sent_to_primary
        finally:
            primary.clear()


def test_instances_sharing_redis_share_a_provider_budget(pair: Pair, backup: Simulator) -> None:
    # 1 request per second, burst 1: within 1.5 s the provider may take two requests in
    # all; per-instance budgets would send two from each instance.
    targets = [pair.a, pair.b, pair.a, pair.b]
    start = threading.Barrier(len(targets))
    sent_before = backup.chat_requests()

    def send(server: ServerProcess) -> httpx.Response:
        with httpx.Client(base_url=server.url, timeout=15.0) as client:
            start.wait(timeout=10)
            return client.post(
                CHAT,
                headers={
                    "authorization": f"Bearer {MASTER_KEY}",
                    "x-seawall-deadline-ms": "1500",
                },
                json={"model": "paced", "messages": [{"role": "user", "content": "hi"}]},
            )

    with ThreadPoolExecutor(len(targets)) as pool:
        responses = list(pool.map(send, targets))
    upstream = backup.chat_requests() - sent_before

    statuses = sorted(response.status_code for response in responses)
    answered = statuses.count(200)
    assert 1 <= upstream <= 2, statuses
    assert answered == upstream, statuses
    refused = [response for response in responses if response.status_code != 200]
    assert len(refused) == len(targets) - answered
    for response in refused:
        assert response.status_code == 429, response.text
        assert response.json()["error"]["code"] == "capacity_exhausted"
        assert float(response.headers["retry-after"]) > 0


def test_a_redis_outage_fails_open_and_shared_state_resumes_after_it(
    private_redis: PrivateRedis,
    primary: Simulator,
    backup: Simulator,
    suffix: str,
    tmp_path: Path,
) -> None:
    main, spare = f"drill-main-{suffix}", f"drill-spare-{suffix}"
    config = f"""
stores: {{redis_url: "{private_redis.url}"}}
{BREAKER}
deployments:
  {main}:
    provider: openai
    model: {main}
    api_base: "{primary.url}/v1"
    limits: {{rpm: 6000}}
  {spare}: {{provider: openai, model: gpt-4o-mini, api_base: "{backup.url}/v1"}}
models:
  drill: [{main}, {spare}]
"""
    with seawall_process(tmp_path / "seawall", config) as seawall, sdk(seawall) as client:
        assert chat(client, "drill").get("x-seawall-deployment") == main
        watcher = private_redis.client()
        try:
            # The outcome was counted in Redis (after the answer, off the response
            # path): the instance is on shared state.
            assert eventually(lambda: bool(watcher.exists(f"seawall:breaker:{main}")), timeout=5)
        finally:
            watcher.close()

        private_redis.stop()
        during = [chat(client, "drill").get("x-seawall-deployment") for _ in range(5)]
        assert during == [main] * 5
        log = seawall.output()
        for store in ("circuit breakers", "provider rate budgets"):
            assert re.search(rf"{store}: Redis unavailable .*failing open", log), log[-3000:]

        private_redis.start()

        def back() -> bool:
            chat(client, "drill")
            return "circuit breakers: Redis is back" in seawall.output()

        assert eventually(back, timeout=10), seawall.output()[-3000:]

        primary.arm(fault="unavailable", model=main)
        try:
            fallbacks = trip_breaker(client, "drill")
            assert set(fallbacks[:-1]) == {f"{main},{spare}"}
        finally:
            primary.clear()
        watcher = private_redis.client()
        try:
            breaker = watcher.hgetall(f"seawall:breaker:{main}")
        finally:
            watcher.close()
        # The breaker tripped in the restarted Redis, where every instance would see it.
        assert breaker.get(b"state") == b"open", breaker


class ConnectionCounter:
    """A loopback TCP proxy, run in its own thread, that counts the connections open through it."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.open = 0
        self.opened = 0
        self._target_port = target_port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        """Where to connect instead of the target."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen and forward."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)

    def stop(self) -> None:
        """Drop every connection and stop the thread."""
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.opened += 1
        self._writers.add(writer)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self._target_port
            )
            self._writers.add(upstream_writer)
            await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
            self._writers.discard(upstream_writer)
        except OSError:
            pass
        finally:
            writer.close()
            self._writers.discard(writer)
            self.open -= 1


@dataclass(frozen=True)
class Watched:
    """A Seawall (no Redis) whose only upstream is reached through a ``ConnectionCounter``."""

    seawall: ServerProcess
    simulator: Simulator
    proxy: ConnectionCounter
    deployment: str
    database: Path


@pytest.fixture(scope="module")
def watched(suffix: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Watched]:
    """A paced simulator (about 10 s per answer), a counting proxy, and a Seawall."""
    root = tmp_path_factory.mktemp("watched")
    deployment = f"watched-{suffix}"
    with simulator_process(
        root / "sim.log", "--output-tokens", "200", "--tokens-per-second", "20"
    ) as simulator:
        proxy = ConnectionCounter(int(simulator.url.rsplit(":", 1)[1]))
        proxy.start()
        # first_byte: later than the 2 s in which a left request's upstream connection must
        # close (so only a cancellation closes it in time), and early enough that an attempt
        # nobody cancelled would time out and be retried before the tests' 3 s wait ends.
        config = f"""
deployments:
  {deployment}:
    provider: openai
    model: gpt-4o-mini
    api_base: "{proxy.url}/v1"
    timeouts: {{connect: 2, first_byte: 3.5, between_chunks: 5, total: 60}}
models:
  watched: [{deployment}]
"""
        try:
            with seawall_process(root, config) as seawall:
                yield Watched(seawall, simulator, proxy, deployment, root / "seawall.db")
        finally:
            proxy.stop()


def _record(database: Path, user: str, timeout: float = 10.0) -> tuple[Any, ...]:
    """The request record of the request sent with ``user``, once written."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.closing(sqlite3.connect(database)) as db:
            row = db.execute(
                "SELECT status_code, error_type, deployment, attempts FROM requests WHERE user = ?",
                (user,),
            ).fetchone()
        if row is not None:
            return tuple(row)
        time.sleep(0.1)
    pytest.fail(f"no request record for user {user!r}")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_client_that_leaves_a_hung_request_cancels_the_upstream_call(
    watched: Watched, stream: bool
) -> None:
    proxy, simulator = watched.proxy, watched.simulator
    assert eventually(lambda: proxy.open == 0, timeout=5), "an upstream connection is left over"
    user = f"leaver-{secrets.token_hex(4)}"
    sent_before = simulator.chat_requests()
    simulator.arm(fault="hang", times=1)
    try:
        body = {
            "model": "watched",
            "messages": [{"role": "user", "content": "hello"}],
            "stream": stream,
            "user": user,
        }
        with (
            httpx.Client(base_url=watched.seawall.url, timeout=1.0) as client,
            pytest.raises(httpx.ReadTimeout),
        ):
            client.post(CHAT, headers={"authorization": f"Bearer {MASTER_KEY}"}, json=body)

        # Seawall dropped its upstream connection: the simulator no longer holds the request.
        assert eventually(lambda: proxy.open == 0, timeout=2.0), f"{proxy.open} still open"
        time.sleep(3.0)  # time for a retry that should not happen
        assert simulator.chat_requests() - sent_before == 1
        status, error_type, deployment, attempts = _record(watched.database, user)
        assert (status, error_type, deployment) == (499, "ClientClosedRequest", watched.deployment)
        # The one attempt that reached the upstream is in the record, once.
        assert attempts is not None and len(attempts.split(",")) == 1, attempts
        assert attempts.startswith(f"{watched.deployment}:"), attempts
    finally:
        simulator.clear()


def test_a_client_that_leaves_mid_stream_cancels_the_upstream_stream(watched: Watched) -> None:
    proxy, simulator = watched.proxy, watched.simulator
    assert eventually(lambda: proxy.open == 0, timeout=5), "an upstream connection is left over"
    user = f"quitter-{secrets.token_hex(4)}"
    sent_before = simulator.chat_requests()
    body = {
        "model": "watched",
        "messages": [{"role": "user", "content": "tell me a long story"}],
        "stream": True,
        "user": user,
    }
    with httpx.Client(base_url=watched.seawall.url, timeout=10.0) as client:
        request = client.build_request(
            "POST", CHAT, headers={"authorization": f"Bearer {MASTER_KEY}"}, json=body
        )
        response = client.send(request, stream=True)
        try:
            assert response.status_code == 200
            lines = response.iter_lines()
            # A few tokens of an answer that takes the upstream about ten seconds.
            for _ in range(3):
                assert next(line for line in lines if line.startswith("data:"))
            assert proxy.open == 1
        finally:
            response.close()

    assert eventually(lambda: proxy.open == 0, timeout=2.0), f"{proxy.open} still open"
    assert simulator.chat_requests() - sent_before == 1
    status, error_type, deployment, attempts = _record(watched.database, user)
    assert (status, error_type, deployment) == (499, "ClientClosedRequest", watched.deployment)
    assert attempts == f"{watched.deployment}:200"
