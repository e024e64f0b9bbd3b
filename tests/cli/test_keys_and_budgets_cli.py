"""``seawall budgets`` and ``seawall keys``: rules and keys in the configured database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seawall.cli.main import main


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty SQLite database named by $SEAWALL_DATABASE_URL (the CLI migrates it)."""
    path = tmp_path / "seawall.db"
    monkeypatch.setenv("SEAWALL_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.chdir(tmp_path)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_a_budget_is_set_replaced_listed_and_deleted(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(
        capsys, "budgets", "set", "--scope", "tenant", "--subject", "acme",
        "--period", "daily", "--soft", "8", "--hard", "10", "--json",
    )  # fmt: skip
    assert status == 0
    created = json.loads(out)
    assert (created["scope"], created["subject"], created["hard_usd"]) == ("tenant", "acme", 10)

    # The same scope, subject and period replaces the limits, keeping the id.
    run(capsys, "budgets", "set", "--scope", "tenant", "--subject", "acme",
        "--period", "daily", "--hard", "20", "--json")  # fmt: skip
    status, out, _ = run(capsys, "budgets", "list", "--json")
    listed = json.loads(out)
    assert [(b["id"], b["hard_usd"], b["soft_usd"]) for b in listed] == [(created["id"], 20, None)]

    status, out, _ = run(capsys, "budgets", "list")
    assert f"{created['id']}  tenant=acme  daily  hard $20" in out

    assert run(capsys, "budgets", "delete", created["id"])[0] == 0
    status, _, err = run(capsys, "budgets", "delete", created["id"])
    assert status == 1 and created["id"] in err
    assert json.loads(run(capsys, "budgets", "list", "--json")[1]) == []


def test_a_budget_without_limits_is_refused_with_a_reason(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, "budgets", "set", "--scope", "user", "--subject", "alice")
    assert status == 2
    assert "soft limit, a hard limit, or both" in err
    status, _, err = run(capsys, "budgets", "set", "--scope", "user", "--subject", "alice",
                         "--soft", "5", "--hard", "1")  # fmt: skip
    assert status == 2 and "soft limit cannot be above its hard limit" in err


def test_keys_are_created_listed_rotated_and_revoked(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, "keys", "create", "--tenant", "acme", "--name", "ci",
                         "--models", "gpt-4o-mini", "--expires-in", "30d", "--json")  # fmt: skip
    assert status == 0
    key = json.loads(out)
    assert key["key"].startswith("sk-sw-") and key["models"] == ["gpt-4o-mini"]

    status, out, _ = run(capsys, "keys", "list")
    assert key["id"] in out and key["key"] not in out and "active" in out

    status, out, _ = run(capsys, "keys", "rotate", key["id"], "--grace", "0", "--json")
    rotated = json.loads(out)
    assert status == 0 and rotated["key"] != key["key"]
    status, out, _ = run(capsys, "keys", "revoke", rotated["id"], "--json")
    assert json.loads(out)["state"] == "revoked"

    status, _, err = run(capsys, "keys", "revoke", "key_nope")
    assert status == 1 and "key_nope" in err
    status, _, err = run(capsys, "keys", "create", "--tier", "platinum")
    assert status == 2 and "platinum" in err
    stored = b"".join(path.read_bytes() for path in database.parent.glob("seawall.db*"))
    for secret in (key["key"], rotated["key"]):
        assert secret.encode() not in stored
        assert secret[:12].encode() in stored  # the visible prefix is kept
