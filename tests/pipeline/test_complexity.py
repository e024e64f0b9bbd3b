"""The complexity score: simple requests go cheap, demanding ones strong, always the same way."""

from __future__ import annotations

from typing import Any

import pytest

from seawall.routing.complexity import ComplexityPolicy, RouteDecision, Score, score

POLICY = ComplexityPolicy(cheap="small", strong="big", threshold=0.5)
BOTH = frozenset({"small", "big"})

CHIT_CHAT: dict[str, Any] = {
    "model": "auto",
    "messages": [{"role": "user", "content": "Hi! How are you today?"}],
}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}

REPORT = "Quarterly revenue grew in the north region while churn rose in the south. " * 60


def hard_request() -> dict[str, Any]:
    """A long, multi-step analysis with tools: the kind of request a small model fumbles."""
    return {
        "model": "auto",
        "messages": [
            {"role": "system", "content": "You are a financial analyst."},
            {"role": "user", "content": REPORT},
            {"role": "assistant", "content": "I have read the report."},
            {
                "role": "user",
                "content": "Analyze the report step by step, compare both regions and "
                "explain why churn rose. Then call the tools you need to check the weather.",
            },
        ],
        "tools": [WEATHER_TOOL],
        "max_tokens": 3000,
    }


def test_chit_chat_scores_cheap() -> None:
    result = score(CHIT_CHAT)
    assert result.value < 0.1
    decision = POLICY.decide(CHIT_CHAT, BOTH)
    assert (decision.tier, decision.model) == ("cheap", "small")


def test_long_multi_step_reasoning_with_tools_scores_strong() -> None:
    result = score(hard_request())
    assert result.value >= 0.7
    assert {"tools", "reasoning", "long_prompt", "long_answer"} <= set(result.reasons)
    decision = POLICY.decide(hard_request(), BOTH)
    assert (decision.tier, decision.model) == ("strong", "big")


def test_the_same_request_always_gets_the_same_score() -> None:
    assert len({score(hard_request()) for _ in range(20)}) == 1
    assert len({POLICY.decide(hard_request(), BOTH) for _ in range(20)}) == 1


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"tools": [WEATHER_TOOL]}, "tools"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "json_schema"),
        ({"max_completion_tokens": 8000}, "long_answer"),
        ({"reasoning_effort": "high"}, "reasoning_effort"),
    ],
)
def test_each_request_parameter_raises_the_score_and_is_named(
    extra: dict[str, Any], reason: str
) -> None:
    plain = score(CHIT_CHAT)
    raised = score({**CHIT_CHAT, **extra})
    assert raised.value > plain.value
    assert reason in raised.reasons and reason not in plain.reasons


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Prove that the square root of 2 is irrational, step by step.", "reasoning"),
        ("Solve ∫ x² dx from 0 to 1 and show the equation you use.", "math"),
        ("Fix this:\n```python\ndef f(:\n    pass\n```", "code"),
        ("1. What is X?\n2. What is Y?\n3. How do they relate?", "multi_part"),
    ],
)
def test_cues_in_the_last_user_message_are_named(text: str, reason: str) -> None:
    result = score({"model": "auto", "messages": [{"role": "user", "content": text}]})
    assert reason in result.reasons


def test_tools_switched_off_do_not_count_but_tool_results_do() -> None:
    off = score({**CHIT_CHAT, "tools": [WEATHER_TOOL], "tool_choice": "none"})
    assert "tools" not in off.reasons
    mid_agent = {
        "model": "auto",
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "18C, clear"},
        ],
    }
    assert "tools" in score(mid_agent).reasons


def test_content_parts_are_read_like_strings() -> None:
    as_parts = {
        "model": "auto",
        "messages": [{"role": "user", "content": [{"type": "text", "text": REPORT}]}],
    }
    as_string = {"model": "auto", "messages": [{"role": "user", "content": REPORT}]}
    assert score(as_parts) == score(as_string)
    assert "long_prompt" in score(as_parts).reasons


def test_cues_buried_in_the_middle_of_a_huge_prompt_are_not_searched() -> None:
    # Scoring reads the head and tail of the last message, so its cost stays flat.
    middle = "filler text " * 2000 + " prove it step by step " + "filler text " * 2000
    result = score({"model": "auto", "messages": [{"role": "user", "content": middle}]})
    assert "reasoning" not in result.reasons
    assert "long_prompt" in result.reasons


def test_the_score_stays_within_zero_and_one() -> None:
    everything = {
        **hard_request(),
        "reasoning_effort": "high",
        "response_format": {"type": "json_schema", "json_schema": {"name": "x"}},
        "tool_choice": "required",
    }
    assert score(everything).value == 1.0
    assert score({"model": "auto", "messages": []}) == Score(0.0, (), 0)


def test_threshold_is_inclusive_and_configurable() -> None:
    value = score(hard_request()).value
    assert POLICY.decide(hard_request(), BOTH).tier == "strong"
    exact = ComplexityPolicy("small", "big", threshold=value)
    assert exact.decide(hard_request(), BOTH).tier == "strong"
    never = ComplexityPolicy("small", "big", threshold=1.0)
    assert never.decide(CHIT_CHAT, BOTH).tier == "cheap"
    always = ComplexityPolicy("small", "big", threshold=0.0)
    assert always.decide(CHIT_CHAT, BOTH).tier == "strong"


def test_a_model_that_cannot_serve_yields_to_the_other() -> None:
    decision = POLICY.decide(hard_request(), frozenset({"small"}))
    assert (decision.tier, decision.model, decision.instead_of) == ("cheap", "small", "strong")
    assert "strong_unusable" in decision.describe("auto")
    # Neither can serve: the scored choice stands, and answers with a clear 503 later.
    assert POLICY.decide(hard_request(), frozenset()).model == "big"


def test_the_decision_reads_as_one_header_line() -> None:
    decision = RouteDecision("strong", "big", Score(0.72, ("tools", "long_prompt"), 900))
    assert decision.describe("auto") == (
        "strong score=0.72 reasons=tools,long_prompt model=big router=auto"
    )
    quiet = RouteDecision("cheap", "small", Score(0.0, (), 3))
    assert quiet.describe("auto") == "cheap score=0.00 reasons=none model=small router=auto"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 1.5}, "threshold must be between 0 and 1"),
        ({"threshold": -0.1}, "threshold must be between 0 and 1"),
        ({"strong": "small"}, "cheap and strong must be different"),
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {"cheap": "small", "strong": "big", "threshold": 0.5, **kwargs}
    with pytest.raises(ValueError, match=message):
        ComplexityPolicy(**values)
