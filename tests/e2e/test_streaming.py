"""Streams are relayed as the upstream produces them, and a client that leaves is recorded."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import MASTER_KEY, start_seawall
from tests.e2e.processes import ServerProcess, clean_env, seawall_argv

# 60 tokens at 30 tokens/s: the upstream needs about two seconds for one answer.
TOKENS, TOKENS_PER_SECOND = 60, 30


@pytest.fixture(scope="module")
def paced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A Seawall in front of a simulator that streams at a human pace."""
    root = tmp_path_factory.mktemp("paced")
    simulator = ServerProcess.start(
        seawall_argv(
            "simulate",
            "--port",
            "{port}",
            "--output-tokens",
            str(TOKENS),
            "--tokens-per-second",
            str(TOKENS_PER_SECOND),
        ),
        root / "simulator.log",
    )
    try:
        simulator.wait_http("/_simulator/stats")
        config = root / "seawall.yaml"
        config.write_text(
            f"""
data_dir: {root}
master_key: {MASTER_KEY}
local_models: false
deployments:
  paced: {{provider: openai, model: gpt-4o-mini, api_base: "{simulator.url}/v1"}}
"""
        )
        seawall = start_seawall(config, root / "serve.log", clean_env())
        try:
            yield seawall.url, root / "seawall.db"
        finally:
            seawall.stop()
    finally:
        simulator.stop()


def _stream(client: httpx.Client) -> httpx.Response:
    return client.send(
        client.build_request(
            "POST",
            "/v1/chat/completions",
            json={
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "tell me a long story"}],
                "stream": True,
            },
        ),
        stream=True,
    )


def test_chunks_arrive_as_the_upstream_produces_them(paced: tuple[str, Path]) -> None:
    url, _ = paced
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as client:
        response = _stream(client)
        arrivals = [time.monotonic() for line in response.iter_lines() if line.startswith("data:")]
    # A gateway that buffered the answer would deliver every chunk at once at the end.
    spread = arrivals[-1] - arrivals[0]
    assert spread > 0.5 * TOKENS / TOKENS_PER_SECOND
    assert len(arrivals) > TOKENS / 2


def test_a_client_that_leaves_mid_stream_is_recorded_as_499(paced: tuple[str, Path]) -> None:
    url, database = paced
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as client:
        response = _stream(client)
        request_id = response.headers["x-request-id"]
        lines = response.iter_lines()
        assert next(line for line in lines if line.startswith("data:"))
        response.close()
    status = None
    deadline = time.monotonic() + 10
    while status is None and time.monotonic() < deadline:
        with sqlite3.connect(database) as db:
            row = db.execute(
                "SELECT status_code, error_type FROM requests WHERE request_id = ?",
                (request_id,),
            ).fetchone()
        status = row
        time.sleep(0.1)
    assert status == (499, "ClientClosedRequest")
