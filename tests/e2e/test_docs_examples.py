"""The examples in README.md and docs/ run as written (against a live Seawall)."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from seawall.config import load_settings
from tests.e2e.conftest import LiveSeawall

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.DOTALL | re.MULTILINE)
_DOC_URL = "http://127.0.0.1:8080"
_DOC_SIMULATOR = "localhost:8900"


def blocks(language: str) -> list[tuple[str, str]]:
    """(where, code) for every fenced block in that language."""
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for index, match in enumerate(_FENCE.finditer(text)):
            if match.group(1) == language:
                found.append((f"{path.relative_to(ROOT)}#{index}", match.group(2)))
    return found


@pytest.mark.parametrize(("where", "code"), blocks("yaml"), ids=[w for w, _ in blocks("yaml")])
def test_yaml_examples_are_valid_configuration(where: str, code: str, tmp_path: Path) -> None:
    path = tmp_path / "example.yaml"
    path.write_text(code)
    environ = {
        "SEAWALL_MASTER_KEY": "sk-seawall-example-master-key",
        "OPENAI_API_KEY": "sk-example",
        "ANTHROPIC_API_KEY": "sk-ant-example",
    }
    settings = load_settings(path, environ)
    assert settings.models, where


@pytest.mark.parametrize(("where", "code"), blocks("python"), ids=[w for w, _ in blocks("python")])
def test_python_examples_run_against_seawall(
    where: str, code: str, live_seawall: LiveSeawall, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _DOC_URL in code, f"{where}: examples address Seawall at {_DOC_URL}"
    monkeypatch.setenv("SEAWALL_API_KEY", live_seawall.key)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code.replace(_DOC_URL, live_seawall.url), where, "exec"), {})
    assert printed.getvalue().strip(), f"{where} printed no answer"


def test_simulator_curl_examples_work(live_seawall: LiveSeawall) -> None:
    simulator = live_seawall.simulator_url.removeprefix("http://")
    commands = [
        line
        for _, code in blocks("sh")
        for line in _joined_lines(code)
        if line.startswith("curl ") and _DOC_SIMULATOR in line
    ]
    assert len(commands) >= 3
    for command in commands:
        argv = shlex.split(command.split("#")[0].replace(_DOC_SIMULATOR, simulator))
        result = subprocess.run(
            [*argv, "--fail", "--silent", "--show-error"],
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert result.returncode == 0, (command, result.stderr)


def _joined_lines(code: str) -> list[str]:
    return code.replace("\\\n", " ").splitlines()
