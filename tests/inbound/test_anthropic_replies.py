"""OpenAI-shaped answers render as Anthropic Messages."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from seawall.inbound.anthropic_messages import (
    message_id_for,
    render_message,
)
from tests.inbound.completions import openai_completion


def test_render_text_answer_is_a_valid_message() -> None:
    rendered = render_message(
        openai_completion({"role": "assistant", "content": "Hi there."}, "stop"), "claude-test"
    )
    message = anthropic.types.Message.model_validate(rendered)

    assert message.id == "msg_abc123"
    assert message.model == "claude-test"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Hi there."  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    # Anthropic counts cached input apart from the rest.
    assert message.usage.input_tokens == 20
    assert message.usage.cache_read_input_tokens == 10
    assert message.usage.output_tokens == 7


def test_render_tool_answer_parses_arguments_and_survives_bad_ones() -> None:
    completion = openai_completion(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Ro'},
                },
            ],
        },
        "tool_calls",
    )
    message = anthropic.types.Message.model_validate(render_message(completion, "claude-test"))

    assert message.stop_reason == "tool_use"
    assert [(b.type, b.id, b.name, b.input) for b in message.content] == [  # type: ignore[union-attr]
        ("tool_use", "call_1", "get_weather", {"city": "Oslo"}),
        ("tool_use", "call_2", "get_weather", {}),
    ]


@pytest.mark.parametrize(
    ("finish_reason", "choice_extra", "stop_reason", "stop_sequence"),
    [
        ("stop", {}, "end_turn", None),
        ("stop", {"stop_reason": "END"}, "stop_sequence", "END"),
        ("stop", {"stop_reason": 128001}, "end_turn", None),
        ("length", {}, "max_tokens", None),
        ("tool_calls", {}, "tool_use", None),
        ("content_filter", {}, "refusal", None),
    ],
)
def test_render_maps_each_stop_reason(
    finish_reason: str, choice_extra: dict[str, Any], stop_reason: str, stop_sequence: str | None
) -> None:
    completion = openai_completion(
        {"role": "assistant", "content": "x"}, finish_reason, **choice_extra
    )
    rendered = render_message(completion, "claude-test")

    assert rendered["stop_reason"] == stop_reason
    assert rendered["stop_sequence"] == stop_sequence


def test_message_ids_derive_from_completion_ids() -> None:
    assert message_id_for("chatcmpl-xyz") == "msg_xyz"
    assert message_id_for("msg_kept") == "msg_kept"
    assert message_id_for(None).startswith("msg_")
