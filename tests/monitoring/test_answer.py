"""The answer observers see: the first choice of a completion or of a stream's chunks."""

from __future__ import annotations

from seawall.monitoring.answer import AnswerCollector, answer_of


def _chunk(index: int, **delta: object) -> dict[str, object]:
    return {"choices": [{"index": index, "delta": delta, "finish_reason": None}]}


def test_a_stream_is_gathered_from_choice_zero_only_with_its_logprobs() -> None:
    collector = AnswerCollector()
    collector.add(_chunk(0, role="assistant", content=""))
    collector.add(_chunk(1, content="other choice"))
    first = _chunk(0, content="Hello")
    first["choices"][0]["logprobs"] = {"content": [{"token": "Hello", "logprob": -0.5}]}  # type: ignore[index]
    collector.add(first)
    collector.add(_chunk(0, content=" world"))
    collector.add({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    collector.add({"choices": [], "usage": {"prompt_tokens": 3}})
    answer = collector.answer()
    assert answer.text == "Hello world"
    assert answer.finish_reason == "stop"
    assert answer.logprobs == [-0.5]


def test_a_completion_gives_text_refusal_tool_calls_and_logprobs() -> None:
    body = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "refusal": "No.",
                            "tool_calls": [{"id": "c1"}]},
                "finish_reason": "tool_calls",
                "logprobs": {"content": [{"logprob": -0.1}, {"logprob": -0.2}]},
            }
        ]
    }  # fmt: skip
    answer = answer_of(body)
    assert answer is not None
    assert (answer.text, answer.refusal, answer.tool_calls) == ("", True, True)
    assert answer.logprobs == [-0.1, -0.2]
    assert answer_of({"choices": []}) is None
