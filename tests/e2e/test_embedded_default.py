"""``seawall serve`` with no configuration at all: the laptop experience.

No config file and no master key: Seawall generates a key, prints it once, keeps it in
the data directory, and serves the bundled local chat and embedding models.
"""

from __future__ import annotations

import math
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from tests.e2e.processes import ServerProcess, clean_env, seawall_argv

KEY_PATTERN = re.compile(r"sk-seawall-[A-Za-z0-9_\-]+")


def start_unconfigured(data_dir: Path, workdir: Path, log: Path) -> ServerProcess:
    """``seawall serve`` with only --port and SEAWALL_DATA_DIR: no file, no key."""
    return ServerProcess.start(
        seawall_argv("serve", "--port", "{port}"),
        log,
        env=clean_env(SEAWALL_DATA_DIR=str(data_dir)),
        cwd=workdir,
    )


@dataclass(frozen=True)
class EmbeddedDefault:
    """What two starts of an unconfigured Seawall showed, and the second one still running."""

    data_dir: Path
    first_output: list[str]
    second_output: list[str]
    printed_key: str
    url: str


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDefault]:
    """Start once (the key is generated), stop, start again on the same data directory."""
    root = tmp_path_factory.mktemp("embedded-default")
    data_dir = root / "data"
    first = start_unconfigured(data_dir, root, root / "first.log")
    try:
        key_line = first.wait_for_line("master key")
        first.wait_for_line("Seawall serving")
    finally:
        first_output = first.stop().splitlines()
    found = KEY_PATTERN.search(key_line)
    assert found, f"no key in {key_line!r}"

    second = start_unconfigured(data_dir, root, root / "second.log")
    try:
        second.wait_for_line("Seawall serving")
        second.wait_http("/health/ready")
        yield EmbeddedDefault(
            data_dir=data_dir,
            first_output=first_output,
            second_output=second.output().splitlines(),
            printed_key=found.group(0),
            url=second.url,
        )
    finally:
        second.stop()


@pytest.fixture
def client(embedded: EmbeddedDefault) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{embedded.url}/v1", api_key=embedded.printed_key, max_retries=0, timeout=60
    )


def test_generated_key_is_printed_once_and_kept_private(embedded: EmbeddedDefault) -> None:
    key_file = embedded.data_dir / "master_key"
    assert key_file.read_text().strip() == embedded.printed_key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert sum(embedded.printed_key in line for line in embedded.first_output) == 1
    assert not any(embedded.printed_key in line for line in embedded.second_output)
    assert any("master key" in line and "kept in" in line for line in embedded.second_output)


def test_bundled_models_are_listed(client: openai.OpenAI) -> None:
    names = {model.id for model in client.models.list()}
    assert {"smollm2-135m-instruct", "all-minilm-l6-v2-embed"} <= names


def test_the_kept_key_is_required(embedded: EmbeddedDefault) -> None:
    anonymous = openai.OpenAI(base_url=f"{embedded.url}/v1", api_key="sk-guess", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        anonymous.models.list()


def test_local_model_answers_a_real_prompt(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="smollm2-135m-instruct",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        temperature=0,
        max_tokens=24,
    )
    assert (completion.choices[0].message.content or "").strip()
    assert completion.choices[0].finish_reason in ("stop", "length")
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens > 0 and 0 < usage.completion_tokens <= 24


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_local_embeddings_place_paraphrases_closer(client: openai.OpenAI) -> None:
    result = client.embeddings.create(
        model="all-minilm-l6-v2-embed",
        input=[
            "The cat is sleeping on the sofa.",
            "A cat naps on the couch.",
            "Quarterly tax filings are due in April.",
        ],
    )
    cat, paraphrase, taxes = (item.embedding for item in result.data)
    assert len(cat) == len(paraphrase) == len(taxes) == 384
    assert _cosine(cat, paraphrase) > _cosine(cat, taxes)
    assert _cosine(cat, paraphrase) > _cosine(paraphrase, taxes)


def test_ready_probe(embedded: EmbeddedDefault) -> None:
    response = httpx.get(f"{embedded.url}/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"
