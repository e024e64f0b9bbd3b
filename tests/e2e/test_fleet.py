"""Many instances behind the shipped nginx configuration: what holds across the fleet.

nginx (TLS with a certificate made for the run) in front of three ``seawall serve``
processes sharing one Redis and one PostgreSQL database (``tests/e2e/fleet.py``). The
access log says which instance answered each request. The last test stops one instance
with SIGTERM and kills another during a streaming load, on a fleet of its own.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.e2e.conftest import MASTER_KEY
from tests.e2e.fleet import Fleet, running_fleet
from tests.e2e.instances import Simulator, eventually, simulator_process
from tests.e2e.nginx import Served, running_nginx
from tests.ports import free_port

HELLO = [{"role": "user", "content": "Tell me about the sea."}]
# Answers of 5 tokens at $1,000 per million output tokens: $0.005 at most each.
SHORT = 5
MAX_COST_USD = SHORT * 1000 / 1_000_000


@pytest.fixture(scope="module")
def primary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """The upstream tests make fail."""
    with simulator_process(tmp_path_factory.mktemp("primary") / "sim.log") as simulator:
        yield simulator


@pytest.fixture(scope="module")
def backup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """The upstream that answers; streams of 100 tokens at 60 per second last 1.7 s."""
    log = tmp_path_factory.mktemp("backup") / "sim.log"
    with simulator_process(log, "--tokens-per-second", "60", "--output-tokens", "100") as simulator:
        yield simulator


@pytest.fixture(scope="module")
def fleet(
    primary: Simulator, backup: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    with running_fleet(tmp_path_factory.mktemp("fleet"), primary, backup) as running:
        yield running


def ask(
    client: openai.OpenAI, session: str | None = None, model: str = "gpt-4o-mini"
) -> tuple[int, dict[str, str], str]:
    """One short chat completion; its status, headers and error code."""
    headers = {"x-seawall-session-id": session} if session else {}
    try:
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=HELLO, max_tokens=SHORT, extra_headers=headers
        )
    except openai.APIStatusError as error:
        body = error.body if isinstance(error.body, dict) else {}
        return error.status_code, dict(error.response.headers), str(body.get("code"))
    return 200, dict(raw.headers), ""


def served_since(fleet: Fleet, count: int) -> list[Served]:
    """The chat completions in the access log after its first ``count`` entries."""
    return [e for e in fleet.nginx.served()[count:] if e.path == "/v1/chat/completions"]


def admin(fleet: Fleet, method: str, path: str, **body: Any) -> Any:
    with fleet.nginx.client() as client:
        answer = client.request(
            method, path, headers={"authorization": f"Bearer {MASTER_KEY}"}, json=body or None
        )
    assert answer.status_code < 300, answer.text
    return answer.json()


def test_a_conversation_stays_on_one_instance_and_the_rest_spreads(fleet: Fleet) -> None:
    before = len(fleet.nginx.served())
    sessions = [f"conversation-{index}-{uuid.uuid4().hex[:6]}" for index in range(12)]
    with fleet.sdk() as client:
        for _ in range(3):
            for session in sessions:
                assert ask(client, session)[0] == 200
        for _ in range(12):
            assert ask(client)[0] == 200

    served = served_since(fleet, before)
    assert len(served) == 3 * len(sessions) + 12
    instances_of: dict[str, set[str]] = defaultdict(set)
    for entry in served:
        instances_of[entry.session].add(entry.instance)
    for session in sessions:
        assert len(instances_of[session]) == 1, (session, instances_of[session])
    # Conversations are spread over the fleet, and so are requests without a session.
    assert len(set().union(*(instances_of[s] for s in sessions))) >= 2
    assert len(instances_of["-"]) >= 2, instances_of["-"]


def test_a_keys_rate_limit_holds_across_the_fleet(fleet: Fleet) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    key = admin(fleet, "POST", "/admin/keys", tenant=tenant, name="limited", rpm=6)["key"]
    before = len(fleet.nginx.served())

    with fleet.sdk(key) as client:
        answers = [ask(client) for _ in range(12)]

    statuses = [status for status, _, _ in answers]
    assert statuses.count(200) == 6 and statuses.count(429) == 6, statuses
    assert {code for status, _, code in answers if status == 429} == {"rate_limit_exceeded"}
    # The requests were spread: no single instance's own count decided.
    assert len({entry.instance for entry in served_since(fleet, before)}) >= 2


def test_a_tenant_budget_holds_across_the_fleet_under_concurrency(fleet: Fleet) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    hard = 4 * MAX_COST_USD
    admin(fleet, "POST", "/admin/budgets", scope="tenant", subject=tenant, period="daily",
          hard_usd=hard)  # fmt: skip
    key = admin(fleet, "POST", "/admin/keys", tenant=tenant, name="spender")["key"]
    time.sleep(0.5)  # every instance reloads its budget rules
    before = len(fleet.nginx.served())

    with fleet.sdk(key) as client, ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda _: ask(client), range(36)))

    statuses = [status for status, _, _ in answers]
    assert statuses.count(200) >= 4, statuses
    refused = [(status, code) for status, _, code in answers if status != 200]
    assert refused and set(refused) == {(429, "insufficient_quota")}
    assert len({entry.instance for entry in served_since(fleet, before)}) >= 2
    # Every request is on the ledger, and together they spent no more than the budget
    # and the one request that may have been admitted last.
    rows: list[Any] = []
    for _ in range(50):
        rows = fleet.ledger("SELECT cost_usd FROM requests WHERE tenant_id = $1", tenant)
        if len(rows) == len(answers):
            break
        time.sleep(0.1)
    assert len(rows) == len(answers)
    assert sum(row["cost_usd"] for row in rows) <= hard + MAX_COST_USD + 1e-9


def test_a_breaker_opened_on_one_instance_is_open_on_all(fleet: Fleet, primary: Simulator) -> None:
    primary.arm(fault="unavailable")
    session = f"tripper-{uuid.uuid4().hex[:6]}"
    try:
        with fleet.sdk() as client:
            fallbacks = []
            for _ in range(10):
                status, headers, _ = ask(client, session, model="guarded")
                assert status == 200
                fallbacks.append(headers.get("x-seawall-fallback"))
                if fallbacks[-1] is None:
                    break
            assert fallbacks[:-1] and fallbacks[-1] is None, f"never opened: {fallbacks}"
            tripped_on = served_since(fleet, 0)[-1].instance
            before, sent_to_primary = len(fleet.nginx.served()), primary.chat_requests()

            answers = [ask(client, model="guarded") for _ in range(15)]
    finally:
        primary.clear()

    # Answered straight by the backup on every instance, none of which tried primary.
    assert [headers.get("x-seawall-deployment") for _, headers, _ in answers] == [
        f"backup-{fleet.suffix}"
    ] * 15
    assert all(headers.get("x-seawall-fallback") is None for _, headers, _ in answers)
    assert primary.chat_requests() == sent_to_primary
    others = {entry.instance for entry in served_since(fleet, before)} - {tripped_on}
    assert others, "every request went to the instance that tripped the breaker"


def test_streams_pass_the_load_balancer_as_they_are_written(fleet: Fleet) -> None:
    arrivals = []
    with fleet.sdk() as client:
        for chunk in client.chat.completions.create(
            model="gpt-4o-mini", messages=HELLO, stream=True
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append(time.monotonic())
    # 100 tokens at 60 per second. The guard holds back the answer's last 256
    # characters until it ends (docs/guard.md); the text before them reaches the client
    # through nginx while the model is still writing.
    assert len(arrivals) >= 3
    assert arrivals[-1] - arrivals[0] > 0.5


def test_seawalls_own_errors_pass_the_load_balancer_unchanged(fleet: Fleet) -> None:
    with fleet.nginx.client() as client:
        too_large = client.post(
            "/v1/chat/completions",
            headers={"authorization": f"Bearer {MASTER_KEY}"},
            content=b'{"model": "gpt-4o-mini", "messages": [], "pad": "' + b"x" * 2_000_000 + b'"}',
        )
        unknown = client.post(
            "/v1/chat/completions",
            headers={"authorization": f"Bearer {MASTER_KEY}"},
            json={"model": "no-such-model", "messages": HELLO},
        )
    assert too_large.status_code == 413
    assert too_large.json()["error"]["type"] == "invalid_request_error"
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "model_not_found"


def test_with_no_instance_left_clients_get_an_error_their_sdk_understands(
    tmp_path: Path,
) -> None:
    nowhere = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    with running_nginx(tmp_path, nowhere) as nginx:
        client = openai.OpenAI(
            base_url=f"{nginx.url}/v1",
            api_key=MASTER_KEY,
            max_retries=0,
            http_client=nginx.client(),
        )
        with client, pytest.raises(openai.APIStatusError) as raised:
            client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert raised.value.status_code == 502
    assert isinstance(raised.value.body, dict)
    assert raised.value.body["code"] == "no_instance"
    # Both instances were tried before giving up.
    assert nginx.served()[-1].request_id == "-"
    assert nginx.access_log.read_text().count("127.0.0.1:") >= 2


@dataclass
class Outcome:
    """One streamed request of the load: when it ran and how it ended."""

    started: float
    ended: float
    request_id: str | None
    completed: bool
    error: str = ""


def stream_once(client: openai.OpenAI) -> Outcome:
    started = time.monotonic()
    request_id = None
    try:
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=HELLO,
            stream=True,
            extra_headers={"x-seawall-session-id": uuid.uuid4().hex},
        )
        request_id = raw.headers.get("x-request-id")
        finish = [c.choices[0].finish_reason for c in raw.parse() if c.choices]
        return Outcome(started, time.monotonic(), request_id, finish[-1:] == ["stop"])
    except (openai.APIError, OSError) as error:
        return Outcome(started, time.monotonic(), request_id, False, repr(error))


def test_stopping_and_killing_instances_under_streaming_load_loses_no_accepted_request(
    primary: Simulator, backup: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with running_fleet(tmp_path_factory.mktemp("chaos"), primary, backup) as fleet:
        stopped, killed, survivor = fleet.instances
        outcomes: list[Outcome] = []
        stop_sending = threading.Event()

        def load(client: openai.OpenAI) -> None:
            while not stop_sending.is_set():
                outcomes.append(stream_once(client))

        with fleet.sdk() as client, ThreadPoolExecutor(max_workers=8) as pool:
            for _ in range(8):
                pool.submit(load, client)
            time.sleep(2.0)
            sigterm_at = time.monotonic()
            stopped.process.terminate()
            time.sleep(2.0)
            sigkill_at = time.monotonic()
            killed.process.kill()
            time.sleep(3.0)
            stop_sending.set()

        assert stopped.process.wait(timeout=30) is not None
        log = stopped.output()
        in_flight = re.search(r"SIGTERM: draining with (\d+) request", log)
        assert in_flight and int(in_flight[1]) > 0, log[-3000:]
        assert "stopped: every request is answered or recorded" in log

        failed = [o for o in outcomes if not o.completed]
        succeeded = [o for o in outcomes if o.completed]
        assert len(succeeded) >= 30, (len(succeeded), failed)
        # Only the streams the killed instance was in the middle of may fail; the
        # stopped instance finished its own, and everything after went elsewhere.
        answered_by = {e.request_id: e.instance for e in fleet.nginx.served()}
        killed_address = killed.url.removeprefix("http://")
        for outcome in failed:
            assert outcome.started < sigkill_at < outcome.ended, (outcome, sigkill_at)
            assert outcome.request_id is not None, outcome
            assert answered_by.get(outcome.request_id) == killed_address, outcome
        assert any(o.started > sigkill_at + 0.5 for o in succeeded)
        assert any(sigterm_at < o.started < sigkill_at for o in succeeded)

        # Every answered request is on the ledger, but for those the killed instance
        # answered within one ledger flush (0.5 s) of its death.
        expected = {
            o.request_id
            for o in succeeded
            if answered_by.get(o.request_id or "") != killed_address or o.ended < sigkill_at - 1
        }

        def ledgered() -> set[str]:
            rows = fleet.ledger(
                "SELECT request_id FROM requests WHERE status_code = 200 AND stream"
            )
            return {row["request_id"] for row in rows}

        assert eventually(lambda: expected <= ledgered(), timeout=10), expected - ledgered()
        assert survivor.process.poll() is None
