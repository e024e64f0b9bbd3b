"""The response cache through the real SDKs: hits, misses, what is never kept, scope.

One Seawall (in-process store) in front of its own simulator, whose request count
tells whether an answer came from upstream. Every test asks its own question, so the
entries of one test never answer another's.
"""

from __future__ import annotations

import secrets
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
import redis

from tests.e2e.conftest import MASTER_KEY
from tests.e2e.instances import Simulator, sdk, seawall_process, simulator_process
from tests.e2e.processes import ServerProcess, clean_env
from tests.redis_keyspace import REDIS_URL

CONFIG = """
cache: {{invalidation_refresh_seconds: 0.2}}
resilience: {{max_attempts: 2, breaker: {{min_requests: 1000000}}}}
deployments:
  main: {{provider: openai, model: gpt-4o-mini, api_base: "{url}/v1"}}
  spare: {{provider: openai, model: gpt-4.1-mini, api_base: "{url}/v1"}}
models:
  gpt-4o-mini: {{deployments: [main], fallbacks: [gpt-4.1-mini]}}
  gpt-4.1-mini: [spare]
"""


@dataclass(frozen=True)
class Stack:
    seawall: ServerProcess
    simulator: Simulator
    root: Path

    def client(self, key: str = MASTER_KEY) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.seawall.url}/v1", api_key=key, max_retries=0)

    def admin(self, method: str, path: str, **body: Any) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.seawall.url}{path}",
            headers={"authorization": f"Bearer {MASTER_KEY}"},
            json=body or None,
            timeout=10,
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("cache")
    with simulator_process(root / "sim.log") as simulator:
        config = CONFIG.format(url=simulator.url)
        with seawall_process(root / "seawall", config) as seawall:
            yield Stack(seawall, simulator, root / "seawall")


def question() -> list[dict[str, str]]:
    """A question no other test asks."""
    return [{"role": "user", "content": f"What is the code word {secrets.token_hex(4)}?"}]


def ask(client: openai.OpenAI, messages: list[dict[str, str]], **options: Any) -> Any:
    """One chat completion at temperature 0 (unless overridden): the raw response."""
    options.setdefault("temperature", 0)
    return client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=messages, **options
    )


def test_a_repeated_deterministic_request_is_answered_from_the_cache(stack: Stack) -> None:
    client, messages = stack.client(), question()
    before = stack.simulator.chat_requests()
    first = ask(client, messages)
    second = ask(client, messages, user="someone-else", metadata={"run": "2"})
    assert first.headers["x-seawall-cache"] == "miss"
    assert second.headers["x-seawall-cache"] == "hit-exact"
    assert int(second.headers["age"]) >= 0
    assert stack.simulator.chat_requests() == before + 1
    answer, cached = first.parse(), second.parse()
    assert cached.choices[0].message.content == answer.choices[0].message.content
    assert cached.id != answer.id  # each response has its own id
    assert second.headers["x-seawall-cost-usd"] == "0"


def test_any_output_parameter_makes_a_different_entry(stack: Stack) -> None:
    client, messages = stack.client(), question()
    base: dict[str, Any] = {"max_tokens": 40}
    ask(client, messages, **base)
    variants = [{"max_tokens": 41}, {"seed": 1}, {"top_p": 0.5}, {"stop": ["\n"]}]
    results = [ask(client, messages, **{**base, **v}).headers["x-seawall-cache"] for v in variants]
    assert results == ["miss"] * len(variants)


def test_non_deterministic_requests_are_cached_only_when_they_ask(stack: Stack) -> None:
    client, messages = stack.client(), question()
    plain = [ask(client, messages, temperature=0.7).headers["x-seawall-cache"] for _ in range(2)]
    assert plain == ["bypass", "bypass"]
    header = {"cache-control": "max-age=60"}
    opted = [
        ask(client, messages, temperature=0.7, extra_headers=header).headers["x-seawall-cache"]
        for _ in range(2)
    ]
    assert opted == ["miss", "hit-exact"]
    # An entry older than the max-age the client accepts does not answer it.
    time.sleep(1.1)
    stale_ok = {"cache-control": "max-age=0"}
    again = ask(client, messages, temperature=0.7, extra_headers=stale_ok)
    assert again.headers["x-seawall-cache"] == "miss"


def test_no_store_and_no_cache(stack: Stack) -> None:
    client, messages = stack.client(), question()
    no_store = ask(client, messages, extra_body={"seawall_cache": "no-store"})
    assert no_store.headers["x-seawall-cache"] == "bypass"
    assert ask(client, messages).headers["x-seawall-cache"] == "miss"  # nothing was kept
    assert ask(client, messages).headers["x-seawall-cache"] == "hit-exact"
    no_cache = ask(client, messages, extra_headers={"cache-control": "no-cache"})
    assert no_cache.headers["x-seawall-cache"] == "bypass"  # asked upstream despite the entry
    bad = client.chat.completions.with_raw_response
    with pytest.raises(openai.BadRequestError, match="seawall_cache"):
        bad.create(model="gpt-4o-mini", messages=messages, extra_body={"seawall_cache": 60})


def test_tenants_never_share_entries(stack: Stack) -> None:
    keys = [
        stack.admin("POST", "/admin/keys", tenant=f"cache-{name}", name=name).json()["key"]
        for name in ("north", "south")
    ]
    north, south = stack.client(keys[0]), stack.client(keys[1])
    messages = question()
    assert ask(north, messages).headers["x-seawall-cache"] == "miss"
    assert ask(south, messages).headers["x-seawall-cache"] == "miss"
    assert ask(north, messages).headers["x-seawall-cache"] == "hit-exact"
    assert ask(south, messages).headers["x-seawall-cache"] == "hit-exact"


def test_a_fallback_answer_is_not_kept_under_the_primary(stack: Stack) -> None:
    client, messages = stack.client(), question()
    stack.simulator.arm(fault="unavailable", model="gpt-4o-mini", times=1)
    try:
        fallback = ask(client, messages)
    finally:
        stack.simulator.clear()
    assert fallback.headers["x-seawall-model"] == "gpt-4.1-mini"
    again = ask(client, messages)
    assert again.headers["x-seawall-cache"] == "miss"
    assert again.headers["x-seawall-model"] == "gpt-4o-mini"


def test_a_truncated_answer_is_not_kept(stack: Stack) -> None:
    client, messages = stack.client(), question()
    cut = ask(client, messages, max_tokens=2)
    assert cut.parse().choices[0].finish_reason == "length"
    assert ask(client, messages, max_tokens=2).headers["x-seawall-cache"] == "miss"


def stream_text(client: openai.OpenAI, messages: Any) -> tuple[str, str | None, Any, str]:
    """Stream one answer: its text, finish reason, usage and x-seawall-cache."""
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=messages,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = [], None, None
    for chunk in raw.parse():
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    return "".join(text), finish, usage, raw.headers["x-seawall-cache"]


def test_a_streamed_answer_is_kept_and_replayed_as_a_stream(stack: Stack) -> None:
    client, messages = stack.client(), question()
    first = stream_text(client, messages)
    replayed = stream_text(client, messages)
    assert first[3] == "miss" and replayed[3] == "hit-exact"
    assert replayed[:3] == first[:3] and first[0]
    # The same entry answers a non-streaming request.
    plain = ask(client, messages)
    assert plain.headers["x-seawall-cache"] == "hit-exact"
    assert plain.parse().choices[0].message.content == first[0]


def test_a_failed_stream_is_never_kept(stack: Stack) -> None:
    client, messages = stack.client(), question()
    stack.simulator.arm(fault="reset_mid_stream", times=1)
    try:
        with pytest.raises(openai.APIError):
            stream_text(client, messages)
    finally:
        stack.simulator.clear()
    assert stream_text(client, messages)[3] == "miss"


def test_hits_are_recorded_at_no_cost(stack: Stack) -> None:
    client, messages = stack.client(), question()
    ids = [ask(client, messages).headers["x-request-id"] for _ in range(2)]
    time.sleep(1.5)  # the record writer flushes at least every second
    with sqlite3.connect(stack.root / "seawall.db") as db:
        rows = dict(
            (row[0], row[1:])
            for row in db.execute(
                "SELECT request_id, cache, cost_usd, completion_tokens FROM requests "
                f"WHERE request_id IN ({','.join('?' * len(ids))})",
                ids,
            )
        )
    assert rows[ids[0]][0] == "miss" and rows[ids[0]][1] > 0
    assert rows[ids[1]] == ("hit-exact", 0.0, 0)


def test_invalidation_by_admin_api_and_cli(stack: Stack) -> None:
    client, messages = stack.client(), question()
    ask(client, messages)
    assert ask(client, messages).headers["x-seawall-cache"] == "hit-exact"
    made = stack.admin("POST", "/admin/cache/invalidate", model="gpt-4o-mini")
    assert made.status_code == 201 and made.json()["model"] == "gpt-4o-mini"
    assert ask(client, messages).headers["x-seawall-cache"] == "miss"
    assert ask(client, messages).headers["x-seawall-cache"] == "hit-exact"
    # The CLI writes to the database; the running gateway picks it up.
    done = subprocess.run(
        [sys.executable, "-m", "seawall.cli.main", "cache", "invalidate", "--model", "gpt-4o-mini"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=stack.root,
        env=clean_env(SEAWALL_CONFIG=str(stack.root / "seawall.yaml")),
    )
    assert done.returncode == 0, done.stderr
    assert "invalidated inv_" in done.stdout
    time.sleep(0.5)
    assert ask(client, messages).headers["x-seawall-cache"] == "miss"
    # Entries younger than older_than_seconds survive an invalidation by age.
    stack.admin("POST", "/admin/cache/invalidate", older_than_seconds=3600)
    assert ask(client, messages).headers["x-seawall-cache"] == "hit-exact"
    bad = stack.admin("POST", "/admin/cache/invalidate", older_than_seconds=-1)
    assert bad.status_code == 400 and "older_than_seconds" in bad.json()["error"]["message"]
    status = stack.admin("GET", "/admin/cache").json()
    assert status["backend"] == "memory" and status["counts"]["hit-exact"] >= 1


def test_the_anthropic_sdk_gets_cached_answers_too(stack: Stack) -> None:
    client = anthropic.Anthropic(base_url=stack.seawall.url, api_key=MASTER_KEY, max_retries=0)
    content = question()[0]["content"]
    responses = [
        client.messages.with_raw_response.create(
            model="gpt-4o-mini",
            max_tokens=64,
            extra_body={"temperature": 0},
            messages=[{"role": "user", "content": content}],
        )
        for _ in range(2)
    ]
    assert [r.headers["x-seawall-cache"] for r in responses] == ["miss", "hit-exact"]
    texts = [r.parse().content[0].text for r in responses]  # type: ignore[union-attr]
    assert texts[0] and texts[0] == texts[1]


def test_instances_sharing_redis_share_the_cache(tmp_path: Path) -> None:
    suffix = secrets.token_hex(4)
    with simulator_process(tmp_path / "sim.log") as simulator:
        config = f'stores: {{redis_url: "{REDIS_URL}"}}\n' + CONFIG.format(url=simulator.url)
        try:
            with (
                seawall_process(tmp_path / "a", config) as a,
                seawall_process(tmp_path / "b", config) as b,
            ):
                messages = [{"role": "user", "content": f"Shared question {suffix}"}]
                assert ask(sdk(a), messages).headers["x-seawall-cache"] == "miss"
                assert ask(sdk(b), messages).headers["x-seawall-cache"] == "hit-exact"
                assert simulator.chat_requests() == 1
        finally:
            shared = redis.Redis.from_url(REDIS_URL)
            for key in shared.scan_iter(match="seawall:cache:*"):
                shared.delete(key)
            shared.close()


SEMANTIC = "cache: {semantic: {enabled: true}}\n"


def semantic_config(simulator: Simulator, redis_url: str | None = None) -> str:
    """CONFIG with the semantic cache on (and a shared Redis when given)."""
    config = CONFIG.format(url=simulator.url).replace(
        "cache: {invalidation_refresh_seconds: 0.2}", ""
    )
    stores = f'stores: {{redis_url: "{redis_url}"}}\n' if redis_url else ""
    return SEMANTIC + stores + config


def test_a_paraphrase_is_answered_by_meaning_and_a_near_miss_is_not(tmp_path: Path) -> None:
    with (
        simulator_process(tmp_path / "sim.log") as simulator,
        seawall_process(tmp_path / "s", semantic_config(simulator)) as seawall,
    ):
        client = sdk(seawall)
        tag = secrets.token_hex(3)

        def ask_text(text: str, **options: Any) -> Any:
            return ask(client, [{"role": "user", "content": f"{text} ({tag})"}], **options)

        first = ask_text("How many kilometres are in 5 miles?")
        paraphrase = ask_text("How many kilometers is 5 miles?")
        assert [first.headers["x-seawall-cache"], paraphrase.headers["x-seawall-cache"]] == [
            "miss",
            "hit-semantic",
        ]
        assert (
            paraphrase.parse().choices[0].message.content
            == first.parse().choices[0].message.content
        )
        # A different number is a different question, however close the wording.
        assert ask_text("How many kilometres are in 8 miles?").headers["x-seawall-cache"] == "miss"
        # A different system prompt is a different context.
        other = ask(
            client,
            [
                {"role": "system", "content": "Answer in French."},
                {"role": "user", "content": f"How many kilometers is 5 miles? ({tag})"},
            ],
        )
        assert other.headers["x-seawall-cache"] == "miss"
        assert simulator.chat_requests() == 3


def test_instances_sharing_redis_share_what_the_semantic_cache_learned(tmp_path: Path) -> None:
    with simulator_process(tmp_path / "sim.log") as simulator:
        config = semantic_config(simulator, REDIS_URL)
        shared = redis.Redis.from_url(REDIS_URL)
        try:
            with (
                seawall_process(tmp_path / "a", config) as a,
                seawall_process(tmp_path / "b", config) as b,
            ):
                tag = secrets.token_hex(3)
                question = [
                    {"role": "user", "content": f"What is the boiling point of water? {tag}"}
                ]
                paraphrase = [
                    {"role": "user", "content": f"At what temperature does water boil? {tag}"}
                ]
                assert ask(sdk(a), question).headers["x-seawall-cache"] == "miss"
                assert ask(sdk(b), paraphrase).headers["x-seawall-cache"] == "hit-semantic"
                assert simulator.chat_requests() == 1
        finally:
            for key in shared.scan_iter(match="seawall:cache*"):
                shared.delete(key)
            shared.close()


def test_warming_a_new_model_with_the_most_requested_questions(
    stack: Stack, tmp_path: Path
) -> None:
    config = CONFIG.format(url=stack.simulator.url)
    with seawall_process(tmp_path / "warm", config) as seawall:
        client = sdk(seawall)
        popular, rare = question(), question()
        for _ in range(3):
            ask(client, popular)
        ask(client, rare)
        before = stack.simulator.chat_requests()
        done = subprocess.run(
            [
                *(sys.executable, "-m", "seawall.cli.main", "cache", "warm"),
                *("--url", seawall.url, "--from-model", "gpt-4o-mini"),
                *("--to-model", "gpt-4.1-mini", "--top", "1"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=clean_env(SEAWALL_MASTER_KEY=MASTER_KEY),
        )
        assert done.returncode == 0, done.stderr
        assert "warmed 1 entries of gpt-4.1-mini" in done.stdout
        # The most requested question was asked of the new model once, and only it.
        assert stack.simulator.chat_requests() == before + 1
        warmed = client.chat.completions.with_raw_response.create(
            model="gpt-4.1-mini", messages=popular, temperature=0
        )
        assert warmed.headers["x-seawall-cache"] == "hit-exact"
        assert warmed.parse().model == "gpt-4.1-mini"
        cold = client.chat.completions.with_raw_response.create(
            model="gpt-4.1-mini", messages=rare, temperature=0
        )
        assert cold.headers["x-seawall-cache"] == "miss"
        # Copying answers as they are (a renamed model) calls nobody upstream.
        copied = httpx.post(
            f"{seawall.url}/admin/cache/warm",
            headers={"authorization": f"Bearer {MASTER_KEY}"},
            json={"from_model": "gpt-4.1-mini", "to_model": "gpt-4o-mini", "mode": "copy"},
            timeout=10,
        )
        assert copied.status_code == 200 and copied.json()["warmed"] >= 1
        bad = httpx.post(
            f"{seawall.url}/admin/cache/warm",
            headers={"authorization": f"Bearer {MASTER_KEY}"},
            json={"from_model": "gpt-4o-mini", "to_model": "nope"},
            timeout=10,
        )
        assert bad.status_code == 400 and "to_model" in bad.json()["error"]["message"]
        time.sleep(1.5)  # the record writer flushes at least every second
        with sqlite3.connect(tmp_path / "warm" / "seawall.db") as db:
            recorded = db.execute(
                "SELECT public_model, tenant_id FROM requests WHERE feature = 'cache-warm'"
            ).fetchall()
        assert recorded == [("gpt-4.1-mini", "default")]
