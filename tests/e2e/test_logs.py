"""``seawall serve``'s log on stderr: JSON lines, one per request, the prompt only redacted."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from tests.e2e.conftest import MASTER_KEY
from tests.e2e.instances import eventually, sdk, simulator_process
from tests.e2e.processes import ServerProcess, clean_env, seawall_argv
from tests.ports import free_port

EMAIL = "marguerite.lindqvist@example.org"
API_KEY = "sk-proj-Qw7eRt9yUi3oPa5sDf8gHj2kLz4xCv6b"
PROMPT = f"Remind marmalade-orbit: write to {EMAIL} with the key {API_KEY} attached."


@contextlib.contextmanager
def seawall_on_stderr(root: Path, config: str) -> Iterator[ServerProcess]:
    """``seawall serve`` with its stderr, the log, in a file of its own (stdout apart)."""
    root.mkdir(parents=True)
    path = root / "seawall.yaml"
    path.write_text(f"data_dir: {root}\nmaster_key: {MASTER_KEY}\nlocal_models: false\n{config}")
    port = free_port()
    with (root / "stdout.txt").open("wb") as stdout, (root / "stderr.txt").open("wb") as stderr:
        process = subprocess.Popen(
            seawall_argv("serve", "--config", str(path), "--port", str(port)),
            stdout=stdout,
            stderr=stderr,
            env=clean_env(),
        )
    # Its output() is then the log alone.
    server = ServerProcess(process, root / "stderr.txt", f"http://127.0.0.1:{port}")
    try:
        server.wait_http("/health/ready")
        yield server
    finally:
        server.stop()


def log_lines(server: ServerProcess) -> list[dict[str, Any]]:
    """Every complete line of the log, each of which must be one JSON object."""
    lines = []
    # The last piece is the line being written (or nothing): not complete yet.
    for text in server.output().split("\n")[:-1]:
        try:
            line = orjson.loads(text)
        except orjson.JSONDecodeError:
            pytest.fail(f"a log line that is not JSON: {text!r}")
        assert isinstance(line, dict), text
        lines.append(line)
    return lines


def send_requests(server: ServerProcess) -> list[str]:
    """A chat answer, a stream, embeddings and a failure, all with PROMPT; their ids."""
    client = sdk(server)
    ids = []
    answer = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}]
    )
    ids.append(answer.headers["x-request-id"])
    stream = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    ids.append(stream.headers["x-request-id"])
    for _ in stream.parse():
        pass
    embedding = client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input=[PROMPT]
    )
    ids.append(embedding.headers["x-request-id"])
    with pytest.raises(openai.NotFoundError) as failed:
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": PROMPT}]
        )
    ids.append(failed.value.response.headers["x-request-id"])
    return ids


def request_lines(server: ServerProcess, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The request log's line for each id, once every request has one."""

    def all_logged() -> bool:
        return set(ids) <= {line.get("request_id") for line in log_lines(server)}

    assert eventually(all_logged, timeout=10)
    lines: dict[str, list[dict[str, Any]]] = {request_id: [] for request_id in ids}
    for line in log_lines(server):
        if line.get("request_id") in lines:
            lines[line["request_id"]].append(line)
    # Exactly one line per request, and it is the request log's.
    assert all(len(found) == 1 for found in lines.values()), lines
    assert all(found[0]["logger"] == "seawall.requests" for found in lines.values())
    return {request_id: found[0] for request_id, found in lines.items()}


def config(simulator_url: str, *, payloads: bool, workers: int) -> str:
    api = f"{simulator_url}/v1"
    return f"""
server: {{workers: {workers}}}
deployments:
  sim: {{provider: openai, model: gpt-4o-mini, api_base: "{api}"}}
  sim-embed: {{provider: openai, model: text-embedding-3-small, api_base: "{api}"}}
models:
  gpt-4o-mini: [sim]
  text-embedding-3-small: [sim-embed]
monitoring:
  logs: {{requests: true, payloads: {str(payloads).lower()}}}
"""


def test_one_json_line_per_request_and_no_prompt_text(tmp_path: Path) -> None:
    with simulator_process(tmp_path / "sim.log") as simulator:
        with seawall_on_stderr(
            tmp_path / "s", config(simulator.url, payloads=False, workers=1)
        ) as seawall:
            ids = send_requests(seawall)
            lines = request_lines(seawall, ids)
        chat, stream, embedding, failure = (lines[request_id] for request_id in ids)
        assert chat["model"] == "gpt-4o-mini" and chat["deployment"] == "sim"
        assert chat["status"] == 200 and chat["stream"] is False
        assert chat["prompt_tokens"] > 0 and chat["completion_tokens"] > 0
        assert stream["stream"] is True and stream["ttfb_ms"] is not None
        assert embedding["operation"] == "embeddings"
        assert failure["status"] == 404 and failure["model"] == "no-such-model"
        assert "prompt" not in chat and "answer" not in chat
        # After the stop: uvicorn's lines, its last included, are JSON too.
        messages = [(line["logger"], line["message"]) for line in log_lines(seawall)]
        assert ("uvicorn.error", "Application startup complete.") in messages
        assert messages[-1][0] == "uvicorn.error" and messages[-1][1].startswith("Finished")
        assert all("color_message" not in line for line in log_lines(seawall))
        text = seawall.output()
        assert "marmalade-orbit" not in text and EMAIL not in text and API_KEY not in text


def test_payloads_are_logged_redacted_with_several_workers(tmp_path: Path) -> None:
    with simulator_process(tmp_path / "sim.log") as simulator:
        with seawall_on_stderr(
            tmp_path / "s", config(simulator.url, payloads=True, workers=2)
        ) as seawall:
            ids = send_requests(seawall)
            lines = request_lines(seawall, ids)
        chat, stream, embedding, failure = (lines[request_id] for request_id in ids)
        redacted = (
            "Remind marmalade-orbit: write to [REDACTED:email] with the key [REDACTED:api_key]"
        )
        for line in (chat, stream, failure):
            assert line["prompt"] == f"user: {redacted} attached."
        assert embedding["prompt"] == f"{redacted} attached."
        # The simulator's answer echoes the prompt: redacted there too.
        assert "[REDACTED:email]" in chat["answer"] and "[REDACTED:email]" in stream["answer"]
        assert failure["answer"] is None
        text = seawall.output()
        assert EMAIL not in text and API_KEY not in text
        # Each worker process logs through the same format (uvicorn's start line here).
        started = {
            line["message"]
            for line in log_lines(seawall)
            if line["message"].startswith("Started server process")
        }
        assert len(started) >= 2
