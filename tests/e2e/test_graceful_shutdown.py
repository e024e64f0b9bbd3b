"""Graceful shutdown, end to end: SIGTERM to a live ``seawall serve`` under real SDK traffic.

The simulator answers at 10 tokens a second, so a 40-token answer stays in flight for
about 4 s: long enough to be caught by the signal, the drain period and the grace period.
What is checked is what clients, load balancers and operators see: readiness, refused
connections, streams that end (or visibly break), error bodies, the ledger and the log.
"""

from __future__ import annotations

import contextlib
import re
import signal
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from tests.e2e.conftest import MASTER_KEY
from tests.e2e.instances import Simulator, eventually, simulator_process
from tests.e2e.processes import ServerProcess, clean_env, seawall_argv

HELLO: list[openai.types.chat.ChatCompletionMessageParam] = [
    {"role": "user", "content": "Tell me about the sea."}
]
# Bounds on every wait; generous, since the machine may be busy.
IN_FLIGHT = 15.0
EXIT = 30.0
ANSWER = 30.0


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """An upstream whose 40-token answers take about 4 s, streamed or not."""
    log = tmp_path_factory.mktemp("slow") / "sim.log"
    with simulator_process(log, "--tokens-per-second", "10", "--output-tokens", "40") as simulator:
        yield simulator


def config(root: Path, simulator: Simulator, drain: float, grace: float) -> Path:
    """One OpenAI-format deployment at the simulator, SQLite in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "seawall.yaml"
    path.write_text(
        f"""
data_dir: {root}
master_key: {MASTER_KEY}
local_models: false
server: {{drain_seconds: {drain}, grace_seconds: {grace}}}
resilience:
  max_attempts: 1
  breaker: {{min_requests: 1000000}}
deployments:
  sim-gpt:
    provider: openai
    model: gpt-4o-mini
    api_base: {simulator.url}/v1
    api_key: sim-key
    timeouts: {{connect: 2, first_byte: 10, between_chunks: 10, total: 30}}
models:
  gpt-4o-mini: [sim-gpt]
"""
    )
    return path


@contextlib.contextmanager
def serving(path: Path, *flags: str) -> Iterator[ServerProcess]:
    """``seawall serve`` ready on a free port; killed at the end if the test left it running."""
    argv = seawall_argv("serve", "--config", str(path), "--port", "{port}", *flags)
    server = ServerProcess.start(argv, path.parent / "serve.log", env=clean_env())
    try:
        server.wait_http("/health/ready")
        yield server
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(timeout=EXIT)


def sdk(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{server.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=ANSWER
    )


@dataclass
class Streamed:
    """How one streamed chat completion went, as the SDK saw it."""

    started: threading.Event = field(default_factory=threading.Event)
    request_id: str = ""
    finish_reasons: list[str] = field(default_factory=list)
    error: BaseException | None = None

    def run(self, client: openai.OpenAI) -> Streamed:
        """Stream to the end (or until it breaks), noting the first chunk."""
        try:
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=HELLO, stream=True
            )
            self.request_id = raw.headers["x-request-id"]
            for chunk in raw.parse():
                self.started.set()
                self.finish_reasons += [c.finish_reason for c in chunk.choices if c.finish_reason]
        except (openai.APIError, httpx.HTTPError) as error:
            self.error = error
        finally:
            self.started.set()
        return self


def answer(client: openai.OpenAI, max_tokens: int | None = None) -> tuple[str, str | None]:
    """One non-streaming chat completion: its request id and finish reason."""
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=HELLO, max_tokens=max_tokens
    )
    return raw.headers["x-request-id"], raw.parse().choices[0].finish_reason


def wait_upstream(simulator: Simulator, count: int) -> None:
    """Block until the simulator has received ``count`` chat requests in all."""
    assert eventually(lambda: simulator.chat_requests() >= count, timeout=IN_FLIGHT)


def refused(url: str) -> bool:
    """Whether a new connection to ``url`` is refused (not merely left unanswered)."""
    try:
        httpx.get(f"{url}/health/live", timeout=0.5)
    except httpx.ConnectError:
        return True
    except httpx.TransportError:  # accepted, then left unanswered or reset
        return False
    return False


def exited(server: ServerProcess) -> str:
    """Wait for the process to end by itself; its output."""
    try:
        server.process.wait(timeout=EXIT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {EXIT} s after SIGTERM:\n{server.output()[-3000:]}")
    return server.output()


def ledger(root: Path) -> dict[str, tuple[int, str | None, bool]]:
    """The ledger's records by request id: status, error type, whether streamed."""
    with closing(sqlite3.connect(root / "seawall.db")) as db:
        rows = db.execute("SELECT request_id, status_code, error_type, stream FROM requests")
        return {rid: (status, error, bool(stream)) for rid, status, error, stream in rows}


def count_in(pattern: str, log: str) -> int:
    found = re.search(pattern, log)
    assert found, log[-3000:]
    return int(found[1])


def resolved(futures: list[Future[Streamed]]) -> list[Streamed]:
    return [future.result(timeout=ANSWER) for future in futures]


def test_sigterm_drains_then_finishes_every_request_in_flight(
    slow: Simulator, tmp_path: Path
) -> None:
    before = slow.chat_requests()
    with serving(config(tmp_path, slow, drain=1.5, grace=10)) as server:
        with sdk(server) as client, ThreadPoolExecutor(max_workers=3) as pool:
            streams = [Streamed() for _ in range(2)]
            running = [pool.submit(stream.run, client) for stream in streams]
            plain = pool.submit(answer, client)
            wait_upstream(slow, before + 3)
            assert all(stream.started.wait(IN_FLIGHT) for stream in streams)

            server.process.send_signal(signal.SIGTERM)
            # A load balancer polling readiness learns at once; the process is still alive.
            assert eventually(
                lambda: httpx.get(f"{server.url}/health/ready", timeout=1).status_code == 503,
                timeout=1,
            )
            ready = httpx.get(f"{server.url}/health/ready", timeout=1)
            assert ready.json()["status"] == "draining"
            assert httpx.get(f"{server.url}/health/live", timeout=1).status_code == 200
            # Traffic that still arrives during the drain period is served.
            late_id, late_finish = answer(client, max_tokens=2)
            assert late_finish == "length"

            server.wait_for_line("drain period over", timeout=IN_FLIGHT)
            # New connections are refused while the streams go on.
            assert eventually(lambda: refused(server.url), timeout=5)
            assert not any(future.done() for future in running)
            streamed = resolved(running)
            plain_id, plain_finish = plain.result(timeout=ANSWER)
        log = exited(server)

    for stream in streamed:
        assert stream.error is None, stream.error
        assert stream.finish_reasons == ["stop"]
    assert plain_finish == "stop"
    assert count_in(r"SIGTERM: draining with (\d+) request", log) == 3
    # The streams were still running when the listening socket closed.
    assert count_in(r"drain period over: [^;]*; (\d+) request", log) >= 2
    assert "grace period over" not in log
    assert "stopped: every request is answered or recorded; the ledger is flushed" in log
    records = ledger(tmp_path)
    expected = {s.request_id: (200, None, True) for s in streamed}
    expected |= {plain_id: (200, None, False), late_id: (200, None, False)}
    assert records == expected


def test_what_outlasts_the_grace_period_is_cut_with_a_503_in_the_clients_format(
    slow: Simulator, tmp_path: Path
) -> None:
    before = slow.chat_requests()
    with serving(config(tmp_path, slow, drain=0, grace=0.5)) as server:
        with (
            sdk(server) as client,
            anthropic.Anthropic(
                base_url=server.url, api_key=MASTER_KEY, max_retries=0, timeout=ANSWER
            ) as claude,
            ThreadPoolExecutor(max_workers=3) as pool,
        ):
            stream = Streamed()
            streaming = pool.submit(stream.run, client)
            plain = pool.submit(answer, client)
            message = pool.submit(
                lambda: claude.messages.create(
                    model="gpt-4o-mini",
                    max_tokens=64,
                    messages=[{"role": "user", "content": "Tell me about the sea."}],
                )
            )
            wait_upstream(slow, before + 3)
            assert stream.started.wait(IN_FLIGHT)
            server.process.send_signal(signal.SIGTERM)

            broken = streaming.result(timeout=ANSWER)
            with pytest.raises(openai.APIStatusError) as openai_error:
                plain.result(timeout=ANSWER)
            with pytest.raises(anthropic.APIStatusError) as anthropic_error:
                message.result(timeout=ANSWER)
        log = exited(server)

    # The stream breaks for its client: no final chunk, an error while reading.
    assert broken.error is not None
    assert broken.finish_reasons == []
    assert openai_error.value.status_code == 503
    assert openai_error.value.code == "shut_down_midway"
    assert openai_error.value.type == "api_error"
    assert anthropic_error.value.status_code == 503
    assert isinstance(anthropic_error.value.body, dict)
    assert anthropic_error.value.body["type"] == "error"
    assert anthropic_error.value.body["error"]["type"] == "overloaded_error"
    assert "shut down" in anthropic_error.value.body["error"]["message"]

    assert count_in(r"grace period over: cutting (\d+) unfinished", log) == 3
    assert "stopped: every request is answered or recorded" in log
    records = ledger(tmp_path)
    assert sorted(records.values()) == [
        (503, "ShutDownMidway", False),
        (503, "ShutDownMidway", False),
        (503, "ShutDownMidway", True),
    ]
    assert records[broken.request_id] == (503, "ShutDownMidway", True)


def test_workers_finish_their_stream_and_the_parent_lets_go_of_the_socket(
    slow: Simulator, tmp_path: Path
) -> None:
    with serving(config(tmp_path, slow, drain=1, grace=10), "--workers", "2") as server:
        with sdk(server) as client, ThreadPoolExecutor(max_workers=1) as pool:
            stream = Streamed()
            streaming = pool.submit(stream.run, client)
            assert stream.started.wait(IN_FLIGHT)
            server.process.send_signal(signal.SIGTERM)

            server.wait_for_line("drain period over", timeout=IN_FLIGHT)
            # Refused while the stream is still being served: the parent no longer holds
            # the socket, so nothing waits unanswered in its queue.
            assert eventually(lambda: refused(server.url), timeout=5)
            assert not streaming.done()
            streamed = streaming.result(timeout=ANSWER)
        log = exited(server)

    assert streamed.error is None, streamed.error
    assert streamed.finish_reasons == ["stop"]
    assert "stopped: every request is answered or recorded" in log
    assert ledger(tmp_path) == {streamed.request_id: (200, None, True)}


def test_a_second_sigterm_ends_a_long_drain_period(slow: Simulator, tmp_path: Path) -> None:
    with serving(config(tmp_path, slow, drain=30, grace=10)) as server:
        server.process.send_signal(signal.SIGTERM)
        server.wait_for_line("SIGTERM: draining", timeout=IN_FLIGHT)
        assert httpx.get(f"{server.url}/health/ready", timeout=1).status_code == 503
        assert not refused(server.url)

        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"a second SIGTERM did not end the drain:\n{server.output()[-3000:]}")
        log = server.output()

    assert "drain period over: accepting no more connections; 0 request(s) in flight" in log
    assert "stopped: every request is answered or recorded" in log
