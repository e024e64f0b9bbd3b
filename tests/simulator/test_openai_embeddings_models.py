"""The real OpenAI SDK gets embeddings and model lists from the simulator."""

from __future__ import annotations

import base64
import math
import struct

import openai
import pytest

from seawall.simulator import RunningSimulator
from seawall.tokens import TokenCounter
from tests.simulator.clients import async_openai


def _norm(vector: list[float]) -> float:
    return math.sqrt(sum(value * value for value in vector))


async def test_embeddings_are_deterministic_unit_vectors(simulator: RunningSimulator) -> None:
    client = async_openai(simulator)
    texts = ["the cat sat on the mat", "a completely different sentence"]
    first = await client.embeddings.create(model="embed-sim", input=texts)
    again = await client.embeddings.create(model="embed-sim", input=texts[0])

    assert first.model == "embed-sim"
    assert [item.index for item in first.data] == [0, 1]
    vectors = [item.embedding for item in first.data]
    assert all(len(vector) == 384 for vector in vectors)
    assert all(abs(_norm(vector) - 1) < 1e-4 for vector in vectors)
    assert vectors[0] != vectors[1]
    assert again.data[0].embedding == vectors[0]
    counter = TokenCounter()
    assert first.usage.prompt_tokens == sum(counter.count_text(text) for text in texts)
    assert first.usage.total_tokens == first.usage.prompt_tokens


async def test_float_and_base64_encodings_carry_the_same_vector(
    simulator: RunningSimulator,
) -> None:
    client = async_openai(simulator)
    as_floats = await client.embeddings.create(
        model="e", input="hello", encoding_format="float", dimensions=64
    )
    as_base64 = await client.embeddings.create(
        model="e", input="hello", encoding_format="base64", dimensions=64
    )
    # Asked for explicitly, base64 reaches the caller undecoded: little-endian float32.
    encoded = as_base64.data[0].embedding
    assert isinstance(encoded, str)
    decoded = struct.unpack("<64f", base64.b64decode(encoded))
    assert len(as_floats.data[0].embedding) == 64
    pairs = zip(as_floats.data[0].embedding, decoded, strict=True)
    assert all(abs(a - b) < 1e-6 for a, b in pairs)


async def test_token_id_inputs_are_embedded_and_counted(simulator: RunningSimulator) -> None:
    client = async_openai(simulator)
    single = await client.embeddings.create(model="e", input=[1, 2, 3])
    batch = await client.embeddings.create(model="e", input=[[1, 2, 3], [4, 5]])
    assert single.usage.prompt_tokens == 3
    assert batch.usage.prompt_tokens == 5
    assert batch.data[0].embedding == single.data[0].embedding
    with pytest.raises(openai.BadRequestError):
        await client.embeddings.create(model="e", input=[])


async def test_models_are_listed_and_any_model_can_be_retrieved(
    simulator: RunningSimulator,
) -> None:
    client = async_openai(simulator)
    listed = await client.models.list()
    assert listed.object == "list"
    assert {model.object for model in listed.data} == {"model"}
    assert "simulator-chat" in {model.id for model in listed.data}
    retrieved = await client.models.retrieve("anything-goes")
    assert retrieved.id == "anything-goes"
