"""The bundled MiniLM embedding model, run for real through onnxruntime."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from seawall.config.schema import Deployment
from seawall.errors import InvalidRequest, UnsupportedParameter, UpstreamUnavailable
from seawall.providers.local_embedding import OnnxEmbeddingBackend
from seawall.providers.model_files import BundledFile

DEPLOYMENT = Deployment(
    name="local-minilm",
    provider="local-embedding",
    model="all-minilm-l6-v2",
    operation="embeddings",
    max_concurrency=2,
    threads=1,
)


@pytest.fixture(scope="module")
async def backend() -> AsyncIterator[OnnxEmbeddingBackend]:
    backend = OnnxEmbeddingBackend()
    yield backend
    await backend.aclose()


async def embed(backend: OnnxEmbeddingBackend, **body: Any) -> dict[str, Any]:
    result = await backend.embed(DEPLOYMENT, {"model": "all-minilm-l6-v2", **body})
    return result.body


def vectors(body: dict[str, Any]) -> np.ndarray:
    return np.array([item["embedding"] for item in body["data"]], dtype=np.float64)


async def test_close_meanings_are_closer_than_unrelated_ones(
    backend: OnnxEmbeddingBackend,
) -> None:
    body = await embed(
        backend,
        input=[
            "The cat sits on the mat.",
            "A kitten is resting on a rug.",
            "Interest rates rose again this quarter.",
        ],
    )
    cat, kitten, rates = vectors(body)
    assert cat @ kitten > cat @ rates + 0.3
    assert cat @ kitten > kitten @ rates + 0.3


async def test_answer_is_an_openai_embedding_list_of_unit_vectors(
    backend: OnnxEmbeddingBackend,
) -> None:
    result = await backend.embed(
        DEPLOYMENT, {"model": "all-minilm-l6-v2", "input": ["hello world", "good morning"]}
    )
    body = result.body
    assert body["object"] == "list"
    assert body["model"] == "all-minilm-l6-v2"
    assert [item["object"] for item in body["data"]] == ["embedding", "embedding"]
    assert [item["index"] for item in body["data"]] == [0, 1]
    matrix = vectors(body)
    assert matrix.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    # "[CLS] hello world [SEP]" and "[CLS] good morning [SEP]".
    assert body["usage"] == {"prompt_tokens": 8, "total_tokens": 8}
    assert result.usage.prompt_tokens == 8
    assert result.usage.completion_tokens == 0


async def test_a_single_string_gives_one_vector(backend: OnnxEmbeddingBackend) -> None:
    body = await embed(backend, input="just one sentence")
    assert len(body["data"]) == 1
    assert len(body["data"][0]["embedding"]) == 384


async def test_base64_decodes_to_the_same_floats(backend: OnnxEmbeddingBackend) -> None:
    text = "Seawall keeps the demo alive under real traffic."
    floats = vectors(await embed(backend, input=text, encoding_format="float"))[0]
    encoded = (await embed(backend, input=text, encoding_format="base64"))["data"][0]["embedding"]
    assert isinstance(encoded, str)
    decoded = np.frombuffer(base64.b64decode(encoded), dtype="<f4")
    assert decoded.shape == (384,)
    np.testing.assert_array_equal(decoded, floats.astype(np.float32))


async def test_batch_keeps_input_order_across_internal_batches(
    backend: OnnxEmbeddingBackend,
) -> None:
    texts = [f"Sentence {i} talks about topic number {i * 7}." for i in range(40)]
    texts[3] = "A much longer sentence, padded against short ones, about weather in Lisbon."
    batch = vectors(await embed(backend, input=texts))
    for index in (0, 3, 31, 32, 39):
        alone = vectors(await embed(backend, input=texts[index]))[0]
        np.testing.assert_allclose(batch[index], alone, atol=1e-4)


async def test_long_input_is_truncated_to_the_model_window(backend: OnnxEmbeddingBackend) -> None:
    body = await embed(backend, input="word " * 2000)
    assert body["usage"]["prompt_tokens"] == 256
    assert len(body["data"][0]["embedding"]) == 384


async def test_dimensions_384_is_accepted(backend: OnnxEmbeddingBackend) -> None:
    body = await embed(backend, input="fine", dimensions=384)
    assert len(body["data"][0]["embedding"]) == 384


@pytest.mark.parametrize(
    ("fields", "error", "param"),
    [
        ({"input": ""}, InvalidRequest, "input"),
        ({"input": []}, InvalidRequest, "input"),
        ({"input": ["fine", ""]}, InvalidRequest, "input"),
        ({"input": None}, InvalidRequest, "input"),
        ({"input": ["fine", 3]}, InvalidRequest, "input"),
        ({"input": [101, 7592, 102]}, UnsupportedParameter, "input"),
        ({"input": [[101, 7592, 102]]}, UnsupportedParameter, "input"),
        ({"input": "fine", "dimensions": 128}, UnsupportedParameter, "dimensions"),
        ({"input": "fine", "encoding_format": "int8"}, InvalidRequest, "encoding_format"),
    ],
)
async def test_bad_requests_are_refused_with_the_right_error(
    backend: OnnxEmbeddingBackend, fields: dict[str, Any], error: type[Exception], param: str
) -> None:
    with pytest.raises(error) as caught:
        await embed(backend, **fields)
    assert type(caught.value) is error
    assert caught.value.param == param  # type: ignore[attr-defined]


async def test_token_id_input_error_tells_the_user_what_to_send(
    backend: OnnxEmbeddingBackend,
) -> None:
    with pytest.raises(UnsupportedParameter, match=r"local-minilm.*list of strings"):
        await embed(backend, input=[101, 7592, 102])


async def test_chat_on_an_embedding_model_is_refused(backend: OnnxEmbeddingBackend) -> None:
    body = {"model": "all-minilm-l6-v2", "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(InvalidRequest, match="embedding model"):
        await backend.chat(DEPLOYMENT, body)
    with pytest.raises(InvalidRequest, match="embedding model"):
        await backend.open_stream(DEPLOYMENT, body)


MISSING = Deployment(
    name="gone",
    provider="local-embedding",
    model="x",
    operation="embeddings",
    model_path="/nonexistent/model.onnx",
)


def test_usable_only_when_the_model_file_exists(backend: OnnxEmbeddingBackend) -> None:
    assert backend.usable(DEPLOYMENT)
    assert not backend.usable(MISSING)


async def test_a_missing_model_file_is_named_in_the_error(backend: OnnxEmbeddingBackend) -> None:
    with pytest.raises(UpstreamUnavailable, match=re.escape("/nonexistent/model.onnx")):
        await backend.embed(MISSING, {"model": "x", "input": "hi"})


def test_a_missing_bundled_package_is_named_in_the_error() -> None:
    absent = BundledFile("seawall-no-such-model", "seawall_no_such_model", "model.onnx")
    assert absent.locate() is None
    with pytest.raises(
        UpstreamUnavailable, match=re.escape("install the 'seawall-no-such-model' package")
    ):
        absent.require()
