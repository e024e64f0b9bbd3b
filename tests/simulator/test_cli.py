"""`seawall simulate` serves until it is told to stop."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys

import httpx
import openai
import pytest

from seawall.cli import simulate
from tests.ports import free_port


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seawall")
    simulate.register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_options_become_the_profile_and_bad_values_are_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = _parser().parse_args(
        ["simulate", "--latency-ms", "5", "--fault", "unavailable", "--fault", '{"fault": "hang"}']
    )
    assert args.func is simulate.run
    assert args.latency_ms == 5.0
    assert args.port == simulate.DEFAULT_PORT
    assert [fault.kind.value for fault in args.fault] == ["unavailable", "hang"]
    for bad in (["--ttft-ms", "-1"], ["--output-tokens", "0"], ["--fault", "gremlins"]):
        with pytest.raises(SystemExit):
            _parser().parse_args(["simulate", *bad])
    assert "gremlins" in capsys.readouterr().err


def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["simulate", "--help"])
    text = capsys.readouterr().out
    for option in (
        "--host",
        "--port",
        "--latency-ms",
        "--ttft-ms",
        "--tokens-per-second",
        "--output-tokens",
        "--api-key",
        "--fault",
    ):
        assert option in text
    assert "/_simulator/faults" in text


def test_serves_requests_and_exits_cleanly_on_sigterm() -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "seawall.cli.main",
            "simulate",
            "--port",
            str(port),
            "--api-key",
            "sk-cli",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert f"http://127.0.0.1:{port}" in banner
        client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-cli", max_retries=0, timeout=10
        )
        reply = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "ping"}]
        )
        assert reply.choices[0].message.content
        stats = httpx.get(f"http://127.0.0.1:{port}/_simulator/stats").json()
        assert stats["requests"] == {"/v1/chat/completions": 1}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
