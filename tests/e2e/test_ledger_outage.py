"""The usage ledger across database outages: a real gateway, the real OpenAI SDK, PostgreSQL.

Seawall reaches a private PostgreSQL database through a TCP proxy that the test cuts
and restores; the simulator is the upstream. Whatever happens to the database, the
``requests`` table must end up with exactly one row per response a client received,
found by the ``x-request-id`` the client saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import openai
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.e2e.conftest import MASTER_KEY, start_seawall
from tests.e2e.processes import ServerProcess, clean_env
from tests.stores.tcp_proxy import TcpProxy

POSTGRES_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"
# Short flushes keep each scenario to a few seconds; the default is 0.5 s.
FLUSH_SECONDS = 0.2


class ThreadedProxy:
    """``TcpProxy`` on an event loop of its own thread, for tests that block."""

    def __init__(self, target_port: int) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._proxy = TcpProxy(target_port)
        self.port = self._proxy.port

    def restore(self) -> None:
        """Listen and forward (again)."""
        asyncio.run_coroutine_threadsafe(self._proxy.start(), self._loop).result(timeout=10)

    def cut(self) -> None:
        """Refuse new connections and reset open ones, as a network failure would."""
        asyncio.run_coroutine_threadsafe(self._proxy.cut(), self._loop).result(timeout=10)

    def close(self) -> None:
        """Cut, stop the loop and its thread."""
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


@dataclass
class Ledger:
    """A private database, and Seawall configured to reach it through the proxy."""

    url: str
    proxy: ThreadedProxy
    root: Path
    config: Path

    @property
    def spool(self) -> Path:
        """Where Seawall spools records (``data_dir``/spool)."""
        return self.root / "spool"

    def request_ids(self) -> list[str]:
        """Every request id in the ``requests`` table, read directly (never through the proxy)."""

        async def read() -> list[str]:
            engine = create_async_engine(self.url)
            try:
                async with engine.connect() as connection:
                    result = await connection.execute(text("SELECT request_id FROM requests"))
                    return list(result.scalars())
            finally:
                await engine.dispose()

        return asyncio.run(read())

    def spooled_ids(self) -> set[str]:
        """Request ids found in spool files now (a torn last line is ignored)."""
        found: set[str] = set()
        for path in self.spool.glob("records-*.jsonl"):
            for line in path.read_bytes().splitlines():
                with contextlib.suppress(orjson.JSONDecodeError):
                    found.add(orjson.loads(line)["request_id"])
        return found

    def spool_files(self) -> list[Path]:
        """Spool files left on disk."""
        return sorted(self.spool.glob("records-*")) if self.spool.is_dir() else []

    @contextlib.contextmanager
    def seawall(self) -> Iterator[ServerProcess]:
        """A ``seawall serve`` for the block, stopped with SIGTERM unless the test killed it."""
        server = start_seawall(self.config, self.root / "serve.log", clean_env())
        try:
            yield server
        finally:
            if server.process.poll() is None:
                server.stop()


async def _admin(statement: str) -> None:
    # CREATE and DROP DATABASE cannot run inside a transaction.
    engine = create_async_engine(f"{POSTGRES_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture
def ledger(simulator: str, tmp_path: Path) -> Iterator[Ledger]:
    """An empty database of our own on the shared server, and a proxy in front of it."""
    name = f"seawall_ledger_{secrets.token_hex(6)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    proxy = ThreadedProxy(target_port=5432)
    proxy.restore()
    config = tmp_path / "seawall.yaml"
    config.write_text(
        f"""
data_dir: {tmp_path}
master_key: {MASTER_KEY}
local_models: false
stores:
  database_url: postgresql://postgres@127.0.0.1:{proxy.port}/{name}
  record_flush_seconds: {FLUSH_SECONDS}
resilience:
  max_attempts: 1
deployments:
  sim-gpt:
    provider: openai
    model: gpt-4o-mini
    api_base: {simulator}/v1
    api_key: sim-key
models:
  gpt-4o-mini: [sim-gpt]
"""
    )
    try:
        yield Ledger(f"{POSTGRES_SERVER}/{name}", proxy, tmp_path, config)
    finally:
        proxy.close()
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class Answers:
    """What clients got back: the request id and status of every response."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    no_response: list[str] = field(default_factory=list)

    def add(self, request_id: str, status: int) -> None:
        """One response."""
        with self.lock:
            self.ids.append(request_id)
            self.statuses.append(status)

    def count(self) -> int:
        """Responses so far."""
        with self.lock:
            return len(self.ids)


def send(client: openai.OpenAI, answers: Answers) -> None:
    """One chat completion; its request id goes to ``answers``, whatever the status."""
    try:
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "ledger"}]
        )
    except openai.APIStatusError as error:
        answers.add(error.response.headers["x-request-id"], error.status_code)
    except openai.APIConnectionError as error:
        with answers.lock:
            answers.no_response.append(repr(error))
    else:
        answers.add(raw.headers["x-request-id"], raw.http_response.status_code)


def sdk(server: ServerProcess) -> openai.OpenAI:
    """The real OpenAI SDK pointed at Seawall, without retries of its own."""
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=10)


@contextlib.contextmanager
def load(server: ServerProcess, answers: Answers, clients: int = 8) -> Iterator[None]:
    """``clients`` threads sending requests back to back for the duration of the block."""
    stop = threading.Event()

    def run() -> None:
        with sdk(server) as client:
            while not stop.is_set():
                send(client, answers)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Return once ``check()`` holds; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout}s")
        time.sleep(0.1)


def assert_one_row_per_response(ledger: Ledger, answers: Answers) -> None:
    """The table holds every id the clients saw, once, and nothing else."""
    assert answers.no_response == []
    wait_for(lambda: len(ledger.request_ids()) >= len(answers.ids), 20, "every record arriving")
    stored = ledger.request_ids()
    assert len(stored) == len(answers.ids)
    assert sorted(stored) == sorted(answers.ids)


def test_records_survive_the_database_going_away_mid_load(ledger: Ledger) -> None:
    answers = Answers()
    with ledger.seawall() as server:
        with load(server, answers):
            wait_for(lambda: answers.count() >= 50, 10, "load starting")
            ledger.proxy.cut()
            at_cut = answers.count()
            wait_for(lambda: answers.count() >= at_cut + 200, 10, "answers during the outage")
            time.sleep(2 * FLUSH_SECONDS)
            during = answers.count() - at_cut
            ledger.proxy.restore()
            time.sleep(1.0)

        assert_one_row_per_response(ledger, answers)
        # The gateway kept serving while its database was away.
        assert during >= 200
        assert set(answers.statuses) == {200}
        output = server.output()
        assert "request record store failed" in output
        assert "request record store recovered" in output
    assert ledger.spool_files() == []


def test_records_spooled_at_sigterm_during_an_outage_arrive_after_a_restart(
    ledger: Ledger,
) -> None:
    answers = Answers()
    with ledger.seawall() as server:
        with sdk(server) as client:
            for _ in range(20):
                send(client, answers)
            ledger.proxy.cut()
            for _ in range(30):
                send(client, answers)
        output = server.stop()

    # A graceful stop (uvicorn then re-raises SIGTERM, so the exit status says -15).
    assert "Application shutdown complete" in output
    assert "left in the spool" in output
    assert len(ledger.spool_files()) == 1
    ledger.proxy.restore()
    with ledger.seawall():
        assert_one_row_per_response(ledger, answers)
    assert ledger.spool_files() == []


def test_records_on_disk_survive_sigkill_during_an_outage(ledger: Ledger) -> None:
    answers = Answers()
    with ledger.seawall() as server:
        ledger.proxy.cut()
        with sdk(server) as client:
            for _ in range(30):
                send(client, answers)
        # Within about a flush interval every record is on disk, where a kill cannot reach it.
        wait_for(lambda: ledger.spooled_ids() >= set(answers.ids), 10 * FLUSH_SECONDS, "spooling")
        server.process.kill()
        server.process.wait(timeout=10)

    ledger.proxy.restore()
    with ledger.seawall():
        assert_one_row_per_response(ledger, answers)
    assert ledger.spool_files() == []
