"""``seawall usage``: reports from the configured database, as JSON and CSV, as the docs show."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from seawall.cli.main import main
from seawall.control.analytics import REPORTS
from seawall.stores.database import create_engine
from seawall.stores.feedback import SqlFeedbackStore
from seawall.stores.migrate import upgrade
from seawall.stores.sql_records import SqlRecordStore
from tests.control.sample_ledger import sample_feedback, sample_ledger

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "analytics.md"
SEAWALL = Path(sys.executable).parent / "seawall"
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.DOTALL | re.MULTILINE)


def doc_examples() -> list[tuple[str, str, str]]:
    """(command, output format, output) for each ``seawall usage`` command in the doc."""
    blocks = [(m.group(1), m.group(2)) for m in _FENCE.finditer(DOC.read_text(encoding="utf-8"))]
    examples = []
    for (language, code), (shown_as, output) in zip(blocks, [*blocks[1:], ("", "")], strict=True):
        if language == "sh" and code.startswith("seawall usage"):
            examples.append((code.strip(), shown_as, output))
    return examples


@pytest.fixture
async def ledger_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A SQLite ledger holding the sample requests, named by $SEAWALL_DATABASE_URL."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    await upgrade(url)
    engine = create_engine(url)
    try:
        await SqlRecordStore(engine).write_batch(sample_ledger())
        for verdict in sample_feedback():
            await SqlFeedbackStore(engine).put(verdict)
    finally:
        await engine.dispose()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEAWALL_DATABASE_URL", url)
    return url


async def usage(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``seawall usage ARGV`` in process (its own event loop, so in a thread)."""
    status = await asyncio.to_thread(main, ["usage", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


async def test_json_report_from_the_configured_database(
    ledger_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = await usage(
        capsys, "daily-spend", "--since", "2025-03-01", "--until", "2025-03-02"
    )
    assert status == 0, err
    assert json.loads(out) == [
        {
            "day": "2025-03-01",
            "model": "claude-sonnet",
            "requests": 2,
            "prompt_tokens": 17_000,
            "completion_tokens": 2_700,
            "cost_usd": 0.0915,
        },
        {
            "day": "2025-03-01",
            "model": "gpt-4o-mini",
            "requests": 1,
            "prompt_tokens": 1_500,
            "completion_tokens": 400,
            "cost_usd": 0.000465,
        },
    ]


async def test_csv_report_has_a_header_and_one_line_per_row(
    ledger_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = await usage(capsys, "spend", "--by", "tenant", "--format", "csv")
    assert status == 0, err
    assert out.splitlines() == [
        "subject,requests,prompt_tokens,completion_tokens,cost_usd,cost_share",
        "globex,2,21000,4100,0.1245,0.574196",
        "acme,7,19700,3400,0.092325,0.425804",
    ]


async def test_the_database_can_come_from_a_config_file(
    ledger_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SEAWALL_DATABASE_URL")
    config = tmp_path / "seawall.yaml"
    config.write_text(f"stores:\n  database_url: {ledger_url}\n", encoding="utf-8")
    status, out, err = await usage(
        capsys, "top-requests", "--config", str(config), "--tenant", "globex", "--limit", "1"
    )
    assert status == 0, err
    assert [row["request_id"] for row in json.loads(out)] == ["req_dave_1"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["daily-spend", "--since", "yesterday"], "'since' must be unix seconds"),
        (["spend"], "needs 'by'"),
        (["model-mix", "--limit", "5"], "does not take 'limit'"),
        (["top-requests", "--limit", "-1"], "'limit' must be a whole number"),
    ],
)
async def test_mistakes_are_usage_errors_that_say_what_is_wrong(
    ledger_url: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status, out, err = await usage(capsys, *argv)
    assert status == 2
    assert out == ""
    assert message in err


async def test_a_missing_database_is_reported_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "never" / "seawall.db"
    monkeypatch.setenv("SEAWALL_DATABASE_URL", f"sqlite:///{missing}")
    status, _, err = await usage(capsys, "model-mix")
    assert status == 1
    assert "no database at" in err and str(missing) in err
    assert not missing.exists() and not missing.parent.exists()


async def test_an_unreachable_database_is_reported_without_its_password(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Port 9 (discard) has no PostgreSQL: the connection is refused at once.
    monkeypatch.setenv("SEAWALL_DATABASE_URL", "postgresql://seawall:hunter2@127.0.0.1:9/ledger")
    status, out, err = await usage(capsys, "model-mix")
    assert status == 1
    assert out == ""
    assert "cannot read postgresql://seawall:***@127.0.0.1:9/ledger" in err
    assert "hunter2" not in err


async def test_help_names_every_report(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # no wrapping, so help phrases can be found whole
    with pytest.raises(SystemExit) as exited:
        main(["usage", "--help"])
    assert exited.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())
    for spec in REPORTS.values():
        assert f"{spec.name} {spec.summary}" in shown
    for option in ("--since", "--until", "--tenant", "--by", "--limit", "--format", "--config"):
        assert option in shown


def test_the_installed_command_prints_csv(ledger_url: str) -> None:
    result = subprocess.run(
        [str(SEAWALL), "usage", "model-mix", "--format", "csv"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SEAWALL_DATABASE_URL": ledger_url},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "model,requests,request_share,tokens,token_share,cost_usd,cost_share"
    )
    assert [line.split(",")[0] for line in result.stdout.splitlines()[1:]] == [
        "claude-sonnet",
        "gpt-4o-mini",
    ]


@pytest.mark.parametrize(
    ("command", "shown_as", "output"), doc_examples(), ids=[c for c, _, _ in doc_examples()]
)
async def test_docs_examples_print_what_the_docs_show(
    ledger_url: str, capsys: pytest.CaptureFixture[str], command: str, shown_as: str, output: str
) -> None:
    argv = shlex.split(command)
    assert argv[:2] == ["seawall", "usage"] and "\n" not in command, command
    status, out, err = await usage(capsys, *argv[2:])
    assert status == 0, err
    if shown_as == "json":
        assert json.loads(out) == json.loads(output), command
    else:
        assert shown_as == "csv", f"{command}: show its output in a csv or json block"
        assert out == output, command


def test_the_docs_show_every_report() -> None:
    shown = {shlex.split(command)[2] for command, _, _ in doc_examples()}
    assert shown == set(REPORTS)
