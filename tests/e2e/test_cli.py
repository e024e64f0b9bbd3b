"""The installed ``seawall`` command, run the way an operator runs it."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from seawall.cli.main import main, parser
from tests.ports import free_port

SEAWALL = Path(sys.executable).parent / "seawall"

VALID = """
master_key: sk-seawall-valid-config-key-123456
local_models: false
deployments:
  sim-gpt:
    provider: openai
    model: gpt-4o-mini
    api_base: http://127.0.0.1:9/v1
    api_key: ${SEAWALL_TEST_UPSTREAM_KEY:-sim-key}
    timeouts: {connect: 2, first_byte: 5}
models:
  chat: [sim-gpt]
"""

# Each problem, and the key its message must name.
BROKEN = """
server:
  port: eighty
  colour: blue
master_key: short
deployments:
  good:
    provider: openai
    model: gpt-4o-mini
    api_base: http://127.0.0.1:9/v1
    api_key: ${SEAWALL_TEST_UNSET_VARIABLE}
  bad-provider:
    provider: openia
    model: gpt-4o-mini
  no-model:
    provider: anthropic
models:
  chat: [good, ghost]
tenants: {}
"""
BROKEN_KEYS = {
    "server.port": "eighty",
    "server.colour": "unknown key",
    "master_key": "16 characters",
    "deployments.good.api_key": "SEAWALL_TEST_UNSET_VARIABLE",
    "deployments.bad-provider.provider": "openia",
    "deployments.no-model.model": "required",
    "models.chat.deployments": "ghost",
    "tenants": "unknown top-level key",
}


def seawall(
    *args: str, cwd: Path | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script; wide COLUMNS so help text is not wrapped mid-phrase."""
    return subprocess.run(
        [str(SEAWALL), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "400"},
    )


def _commands() -> dict[str, argparse.ArgumentParser]:
    """Every parser with its own help, keyed by the words after ``seawall`` ("", "config check")."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(words: tuple[str, ...], node: argparse.ArgumentParser) -> None:
        found[" ".join(words)] = node
        for action in node._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk((*words, name), child)

    walk((), parser())
    return found


def _flat(text: str) -> str:
    return " ".join(text.split())


def help_text(words: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """``seawall WORDS --help`` in process: it must exit 0; returns what it printed."""
    with pytest.raises(SystemExit) as exited:
        main([*words, "--help"])
    assert exited.value.code == 0
    return _flat(capsys.readouterr().out)


@pytest.mark.parametrize("command", ["", "serve", "simulate", "config", "config check"])
def test_help_exits_zero_and_explains_every_option(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # no wrapping, so help phrases can be found whole
    shown = help_text(command.split(), capsys)
    assert shown.startswith(f"usage: seawall {command}".rstrip())
    node = _commands()[command]
    if command != "config":
        assert node.description and _flat(node.description)[:60] in shown
    formatter = node._get_formatter()
    for action in node._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                assert choice.help, f"{command!r}: subcommand {choice.dest} has no help"
                assert choice.dest in shown and _flat(choice.help) in shown
            continue
        assert action.help, f"{command!r}: {action.option_strings or action.dest} has no help"
        for option in action.option_strings:
            assert option in shown
        assert _flat(formatter._expand_help(action)) in shown


def test_installed_command_runs_and_names_every_subcommand() -> None:
    result = seawall("--help")
    assert result.returncode == 0, result.stderr
    for name in ("serve", "simulate", "config"):
        assert name in result.stdout


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
    assert "usage: seawall" in capsys.readouterr().err


def test_config_check_accepts_a_valid_file(tmp_path: Path) -> None:
    config = tmp_path / "seawall.yaml"
    config.write_text(VALID)
    result = seawall("config", "check", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
    assert "chat" in result.stdout and "sim-gpt" in result.stdout


def test_config_check_lists_every_problem_with_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text(BROKEN)
    result = seawall("config", "check", str(config))
    assert result.returncode == 1
    problems = [line for line in result.stdout.splitlines() if line.startswith(f"{config}: ")]
    for key, detail in BROKEN_KEYS.items():
        matching = [line for line in problems if line.startswith(f"{config}: {key}: ")]
        assert matching, f"no problem reported for {key}:\n{result.stdout}"
        assert detail in matching[0]
    assert len(problems) == len(BROKEN_KEYS)
    assert f"{len(BROKEN_KEYS)} problem(s)" in result.stdout


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "cannot read the file"),
        ("deployments: [unclosed\n", "not valid YAML"),
        ("- a list\n- not a mapping\n", "mapping at the top level"),
    ],
)
def test_config_check_reports_unreadable_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, needle: str
) -> None:
    config = tmp_path / "seawall.yaml"
    if content is not None:
        config.write_text(content)
    assert main(["config", "check", str(config)]) == 1
    out = capsys.readouterr().out
    assert str(config) in out and needle in out


def test_serve_refuses_a_broken_config_without_starting(tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text(BROKEN)
    port = free_port()
    # The timeout is the proof it did not start: a server would still be running.
    result = seawall("serve", "--config", str(config), "--port", str(port), cwd=tmp_path)
    assert result.returncode != 0
    for key in BROKEN_KEYS:
        assert f"{config}: {key}: " in result.stderr, f"{key} missing from:\n{result.stderr}"
    assert "Seawall serving" not in result.stdout
    assert "master key" not in result.stdout
    assert not (tmp_path / ".seawall").exists(), "nothing is written before the config is valid"
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
