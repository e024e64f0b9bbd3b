"""Seawall in front of a real third-party OpenAI-compatible server, not only the simulator.

``llama_cpp.server`` (llama-cpp-python) runs the bundled SmolLM2 GGUF; a second
``seawall serve`` routes the public model ``smollm2`` to it as an ``openai`` deployment.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import orjson
import pytest

from seawall.providers.model_files import SMOLLM2_GGUF
from tests.e2e.conftest import MASTER_KEY, start_seawall
from tests.e2e.processes import ServerProcess, clean_env
from tests.openai_spec import assert_valid, openai_spec

QUESTION: list[Any] = [{"role": "user", "content": "What is the capital of France?"}]


@dataclass(frozen=True)
class ThirdPartyUpstream:
    """llama_cpp.server and the Seawall in front of it."""

    upstream_v1: str
    seawall_v1: str


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` with SmolLM2, until the module's tests are done."""
    log = tmp_path_factory.mktemp("llama-cpp-server") / "server.log"
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(SMOLLM2_GGUF.require())]
    argv += ["--host", "127.0.0.1", "--port", "{port}", "--n_threads", "1", "--n_ctx", "2048"]
    server = ServerProcess.start([*argv, "--model_alias", "smollm2"], log)
    try:
        server.wait_http("/v1/models")
        yield f"{server.url}/v1"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def third_party(
    llama_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ThirdPartyUpstream]:
    """A second ``seawall serve`` whose only chat model is served by llama_cpp.server."""
    data_dir = tmp_path_factory.mktemp("seawall-third-party")
    config = data_dir / "seawall.yaml"
    config.write_text(
        f"""
data_dir: {data_dir}
master_key: ${{TEST_MASTER_KEY}}
local_models: false
deployments:
  llama-cpp:
    provider: openai
    api_base: {llama_server}
    model: smollm2
    timeouts: {{connect: 2, first_byte: 30, between_chunks: 30, total: 60}}
models:
  smollm2: [llama-cpp]
"""
    )
    server = start_seawall(config, data_dir / "serve.log", clean_env(TEST_MASTER_KEY=MASTER_KEY))
    try:
        yield ThirdPartyUpstream(upstream_v1=llama_server, seawall_v1=f"{server.url}/v1")
    finally:
        server.stop()


@pytest.fixture
def client(third_party: ThirdPartyUpstream) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=third_party.seawall_v1, api_key=MASTER_KEY, max_retries=0, timeout=60
    )


def spec_violations(schema: str, instance: Any) -> set[str]:
    """Every violation of ``schema`` as ``path: message``."""
    return {
        f"{'/'.join(map(str, error.path))}: {error.message}"
        for error in openai_spec().validator(schema).iter_errors(instance)
    }


def upstream_violations(schema: str, upstream_v1: str, body: dict[str, Any]) -> set[str]:
    """What llama_cpp.server's own answer to ``body`` violates, asked directly."""
    if body.get("stream"):
        with httpx.stream("POST", f"{upstream_v1}/chat/completions", json=body, timeout=60) as r:
            lines = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
        return set().union(
            *(spec_violations(schema, orjson.loads(data)) for data in lines if data != "[DONE]")
        )
    answer = httpx.post(f"{upstream_v1}/chat/completions", json=body, timeout=60).json()
    return spec_violations(schema, answer)


def test_non_stream_answer_with_usage(
    client: openai.OpenAI, third_party: ThirdPartyUpstream
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="smollm2", messages=QUESTION, temperature=0, max_tokens=16
    )
    assert raw.headers["x-seawall-deployment"] == "llama-cpp"
    assert raw.headers["x-request-id"].startswith("req_")
    completion = raw.parse()
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert (choice.message.content or "").strip()
    assert choice.finish_reason in ("stop", "length")
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens > 0 and 0 < usage.completion_tokens <= 16
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    body = raw.http_response.json()
    # Seawall relays the upstream's message as is, so it may carry the upstream's own spec
    # violations through, but it must add none.
    sent = {"model": "smollm2", "messages": QUESTION, "temperature": 0, "max_tokens": 16}
    upstream = upstream_violations("CreateChatCompletionResponse", third_party.upstream_v1, sent)
    relayed = spec_violations("CreateChatCompletionResponse", body)
    assert relayed <= upstream, f"violations Seawall introduced: {relayed - upstream}"
    # The fields Seawall itself controls are right regardless.
    assert body["object"] == "chat.completion"
    assert body["model"] == "smollm2"
    assert_valid("CompletionUsage", body["usage"])


def test_stream_with_include_usage(client: openai.OpenAI, third_party: ThirdPartyUpstream) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="smollm2",
        messages=QUESTION,
        temperature=0,
        max_tokens=8,
        stream=True,
        stream_options={"include_usage": True},
    )
    # exclude_unset: exactly the keys that came over the wire, for the schema check.
    chunks = [chunk.model_dump(mode="json", exclude_unset=True) for chunk in raw.parse()]
    assert chunks
    text = "".join(
        choice.get("delta", {}).get("content") or "" for c in chunks for choice in c["choices"]
    )
    assert text.strip()
    finish = [choice["finish_reason"] for c in chunks for choice in c["choices"]]
    assert finish[-1] in ("stop", "length")

    sent = {
        "model": "smollm2",
        "messages": QUESTION,
        "temperature": 0,
        "max_tokens": 8,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    upstream = upstream_violations(
        "CreateChatCompletionStreamResponse", third_party.upstream_v1, sent
    )
    for chunk in chunks:
        relayed = spec_violations("CreateChatCompletionStreamResponse", chunk)
        assert relayed <= upstream, f"violations Seawall introduced: {relayed - upstream}"
        assert chunk["object"] == "chat.completion.chunk"

    # include_usage promises a last chunk with no choices and the totals, whether or not
    # the upstream honoured stream_options itself.
    last = chunks[-1]
    assert last["choices"] == [], f"no usage chunk at the end of the stream: {last}"
    assert_valid("CompletionUsage", last["usage"])
    assert 0 < last["usage"]["completion_tokens"] <= 8
    assert last["usage"]["prompt_tokens"] > 0
