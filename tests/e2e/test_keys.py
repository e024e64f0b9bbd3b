"""API keys end to end: created by the admin API and the CLI, used by the real SDKs.

A Seawall of its own (a short key cache, so revocations show quickly) in front of the
simulator; keys are created with the master key and then used like any client would.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.e2e.conftest import MASTER_KEY, gateway_config, start_seawall
from tests.e2e.processes import ServerProcess, clean_env, seawall_argv

CACHE_SECONDS = 0.3
HELLO = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def gateway(simulator: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("keys")
    config = data_dir / "seawall.yaml"
    config.write_text(
        gateway_config(simulator, data_dir)
        + f"""
tenancy:
  key_cache_seconds: {CACHE_SECONDS}
  auth_failures_per_minute: 1000
  tiers:
    partner: {{models: [gpt-4o-mini], endpoints: [chat.completions, models]}}
"""
    )
    server = start_seawall(config, data_dir / "serve.log", clean_env(TEST_MASTER_KEY=MASTER_KEY))
    try:
        yield server
    finally:
        server.stop()


def admin(
    gateway: ServerProcess, method: str, path: str, key: str = MASTER_KEY, **body: Any
) -> httpx.Response:
    return httpx.request(
        method,
        f"{gateway.url}{path}",
        headers={"Authorization": f"Bearer {key}"},
        json=body or None,
        timeout=10,
    )


def new_key(gateway: ServerProcess, **fields: Any) -> dict[str, Any]:
    answer = admin(gateway, "POST", "/admin/keys", **fields)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def client(gateway: ServerProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


def database(gateway: ServerProcess) -> Path:
    return Path(str(gateway.log_path.parent)) / "seawall.db"


def test_a_created_key_works_and_its_requests_carry_tenant_and_key(
    gateway: ServerProcess,
) -> None:
    created = new_key(gateway, tenant="acme", name="web app", tier="verified")
    assert created["key"].startswith("sk-sw-") and created["state"] == "active"

    raw = client(gateway, created["key"]).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=HELLO, extra_headers={"x-seawall-user": "alice"}
    )
    request_id = raw.headers["x-request-id"]
    assert raw.parse().choices[0].message.content

    row = _record(gateway, request_id)
    assert row == ("acme", created["id"], "alice", "127.0.0.1")


def test_listing_never_shows_a_secret(gateway: ServerProcess) -> None:
    created = new_key(gateway, tenant="acme", name="listing")
    listing = admin(gateway, "GET", "/admin/keys?tenant=acme").json()["data"]
    mine = [key for key in listing if key["id"] == created["id"]]
    assert mine and "key" not in mine[0] and mine[0]["prefix"] == created["key"][:12]
    assert created["key"] not in json.dumps(listing)


def test_a_revoked_key_is_refused_with_an_authentication_error(gateway: ServerProcess) -> None:
    created = new_key(gateway, tenant="acme", name="to revoke")
    sdk = client(gateway, created["key"])
    sdk.chat.completions.create(model="gpt-4o-mini", messages=HELLO)

    assert admin(gateway, "DELETE", f"/admin/keys/{created['id']}").json()["state"] == "revoked"
    time.sleep(CACHE_SECONDS + 0.1)

    with pytest.raises(openai.AuthenticationError, match="revoked"):
        sdk.chat.completions.create(model="gpt-4o-mini", messages=HELLO)


def test_an_expired_key_is_refused(gateway: ServerProcess) -> None:
    created = new_key(gateway, tenant="acme", name="short-lived", expires_in="1s")
    time.sleep(1.1)
    with pytest.raises(openai.AuthenticationError, match="expired"):
        client(gateway, created["key"]).models.list()


def test_rotation_keeps_the_old_secret_working_for_the_grace_period(
    gateway: ServerProcess,
) -> None:
    old = new_key(gateway, tenant="acme", name="rotating")
    rotated = admin(gateway, "POST", f"/admin/keys/{old['id']}/rotate", grace="1s")
    assert rotated.status_code == 201
    new = rotated.json()
    assert new["key"] != old["key"]

    client(gateway, old["key"]).models.list()
    client(gateway, new["key"]).models.list()
    time.sleep(1.1 + CACHE_SECONDS)
    with pytest.raises(openai.AuthenticationError, match=new["id"]):
        client(gateway, old["key"]).models.list()
    client(gateway, new["key"]).models.list()


def test_scopes_limit_models_and_endpoints(gateway: ServerProcess) -> None:
    created = new_key(gateway, tenant="partner-co", name="partner", tier="partner")
    sdk = client(gateway, created["key"])

    assert [m.id for m in sdk.models.list()] == ["gpt-4o-mini"]
    with pytest.raises(openai.PermissionDeniedError, match="text-embedding-3-small"):
        sdk.chat.completions.create(model="text-embedding-3-small", messages=HELLO)
    with pytest.raises(openai.PermissionDeniedError, match="embeddings"):
        sdk.embeddings.create(model="text-embedding-3-small", input="hi")
    claude = anthropic.Anthropic(base_url=gateway.url, api_key=created["key"], max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError, match="messages"):
        claude.messages.create(model="claude-sonnet-4-0", max_tokens=8, messages=HELLO)


def test_the_admin_api_needs_an_admin_key(gateway: ServerProcess) -> None:
    ordinary = new_key(gateway, tenant="acme", name="not admin", tier="verified")
    boss = new_key(gateway, tenant="acme", name="admin", tier="admin")

    assert admin(gateway, "GET", "/admin/keys", key=ordinary["key"]).status_code == 403
    assert admin(gateway, "GET", "/admin/keys", key="sk-sw-nonsense").status_code == 401
    assert admin(gateway, "GET", "/admin/keys", key=boss["key"]).status_code == 200


def test_a_client_cannot_claim_another_ip_through_an_untrusted_forwarded_for(
    gateway: ServerProcess,
) -> None:
    # This gateway trusts no proxy: the header from a client on 127.0.0.1 is ignored, so
    # per-IP limits and the ledger see the real peer (the server adds no rewrite of its own).
    created = new_key(gateway, tenant="acme", name="spoofer")
    raw = client(gateway, created["key"]).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=HELLO, extra_headers={"x-forwarded-for": "203.0.113.9"}
    )
    assert _record(gateway, raw.headers["x-request-id"])[3] == "127.0.0.1"


def test_the_admin_api_explains_bad_input(gateway: ServerProcess) -> None:
    bad_tier = admin(gateway, "POST", "/admin/keys", tenant="acme", tier="platinum")
    assert bad_tier.status_code == 400
    assert "platinum" in bad_tier.json()["error"]["message"]
    missing = admin(gateway, "DELETE", "/admin/keys/key_nope")
    assert missing.status_code == 404 and "key_nope" in missing.json()["error"]["message"]
    garbled = httpx.post(
        f"{gateway.url}/admin/keys",
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        content=b"{not json",
        timeout=10,
    )
    assert garbled.status_code == 400 and garbled.json()["error"]["type"] == "invalid_request_error"


def test_the_cli_creates_a_key_the_gateway_accepts(gateway: ServerProcess) -> None:
    config = Path(str(gateway.log_path.parent)) / "seawall.yaml"
    created = subprocess.run(
        seawall_argv("keys", "create", "--config", str(config), "--tenant", "cli-co",
                     "--name", "from the cli", "--json"),
        capture_output=True, text=True, check=True, timeout=60,
        env=clean_env(TEST_MASTER_KEY=MASTER_KEY),
    )  # fmt: skip
    key = json.loads(created.stdout)
    client(gateway, key["key"]).models.list()

    listed = subprocess.run(
        seawall_argv("keys", "list", "--config", str(config), "--tenant", "cli-co"),
        capture_output=True, text=True, check=True, timeout=60,
        env=clean_env(TEST_MASTER_KEY=MASTER_KEY),
    )  # fmt: skip
    assert key["id"] in listed.stdout and key["key"] not in listed.stdout


def _record(gateway: ServerProcess, request_id: str) -> tuple[Any, ...]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with sqlite3.connect(database(gateway)) as connection:
            row = connection.execute(
                'SELECT tenant_id, key_id, "user", client_ip FROM requests WHERE request_id = ?',
                (request_id,),
            ).fetchone()
        if row is not None:
            return tuple(row)
        time.sleep(0.05)
    raise AssertionError(f"no record for {request_id}")
