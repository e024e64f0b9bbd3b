"""An OpenAI chat request checked and reduced to what the local model can honour."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from seawall.config.schema import Deployment
from seawall.errors import InvalidRequest, UnsupportedParameter
from seawall.providers.base import JSONObject

# Sent when the request sets no limit: enough for a short answer from a small model.
DEFAULT_MAX_TOKENS = 256
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


@dataclass(frozen=True, slots=True)
class Sampling:
    """How to generate each choice."""

    n: int
    max_tokens: int
    temperature: float
    top_p: float
    presence_penalty: float
    frequency_penalty: float
    seed: int
    stop: tuple[str, ...]
    # GBNF grammar constraining the output (JSON mode), or None.
    grammar: str | None


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """An OpenAI chat request, checked and reduced to what the local model needs."""

    model: str
    messages: list[dict[str, str]]
    sampling: Sampling
    include_usage: bool


def parse_chat_request(deployment: Deployment, body: JSONObject, rng: random.Random) -> ChatRequest:
    """Check an OpenAI chat body against what a local model can honour."""
    _refuse_unsupported(deployment, body)
    limit_name = "max_completion_tokens" if body.get("max_completion_tokens") else "max_tokens"
    max_tokens = _integer(body, limit_name, DEFAULT_MAX_TOKENS, 1, None)
    seed = _integer(body, "seed", 0, None, None) if body.get("seed") is not None else None
    stream_options = body.get("stream_options")
    return ChatRequest(
        model=str(body.get("model") or deployment.model),
        messages=_messages(deployment, body.get("messages")),
        sampling=Sampling(
            n=_integer(body, "n", 1, 1, 128),
            max_tokens=min(max_tokens, deployment.max_output_tokens),
            temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
            top_p=_number(body, "top_p", 1.0, 0.0, 1.0),
            presence_penalty=_number(body, "presence_penalty", 0.0, -2.0, 2.0),
            frequency_penalty=_number(body, "frequency_penalty", 0.0, -2.0, 2.0),
            seed=rng.randrange(2**32) if seed is None else seed % 2**32,
            stop=_stops(body.get("stop")),
            grammar=_grammar_for(deployment, body.get("response_format")),
        ),
        include_usage=isinstance(stream_options, dict)
        and bool(stream_options.get("include_usage")),
    )


def _refuse_unsupported(deployment: Deployment, body: JSONObject) -> None:
    where = f"deployment {deployment.name} (local model)"
    if body.get("tools") or body.get("functions"):
        name = "tools" if body.get("tools") else "functions"
        raise UnsupportedParameter(
            f"{where} does not support tools; route this request to a model that does, "
            "or describe the tool in the prompt and parse the answer yourself",
            param=name,
        )
    if body.get("tool_choice") not in (None, "none") or body.get("function_call") is not None:
        raise UnsupportedParameter(f"{where} does not support tools", param="tool_choice")
    if body.get("logprobs") or body.get("top_logprobs") is not None:
        raise UnsupportedParameter(
            f"{where} does not return logprobs; remove 'logprobs' and 'top_logprobs'",
            param="logprobs",
        )
    if body.get("logit_bias"):
        raise UnsupportedParameter(f"{where} does not support logit_bias", param="logit_bias")
    modalities = body.get("modalities")
    if body.get("audio") is not None or (modalities and set(modalities) != {"text"}):
        raise UnsupportedParameter(f"{where} only produces text", param="modalities")


def _messages(deployment: Deployment, raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("'messages' must be a non-empty list", param="messages")
    messages: list[dict[str, str]] = []
    for index, message in enumerate(raw):
        if not isinstance(message, dict):
            raise InvalidRequest(f"'messages[{index}]' must be an object", param="messages")
        role = message.get("role")
        if role in ("tool", "function") or message.get("tool_calls"):
            raise UnsupportedParameter(
                f"deployment {deployment.name} (local model) does not support tool messages",
                param=f"messages[{index}]",
            )
        if role not in _ROLES:
            raise InvalidRequest(
                f"'messages[{index}].role' must be one of {', '.join(_ROLES)}",
                param=f"messages[{index}].role",
            )
        content = _content_text(deployment, message.get("content"), index)
        messages.append({"role": _ROLES[role], "content": content})
    return messages


def _content_text(deployment: Deployment, content: Any, index: int) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise InvalidRequest(
            f"'messages[{index}].content' must be a string or a list of parts",
            param=f"messages[{index}].content",
        )
    texts: list[str] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind != "text" or not isinstance(part.get("text"), str):
            raise UnsupportedParameter(
                f"deployment {deployment.name} (local model) only reads text content, "
                f"not {kind or 'this'} parts",
                param=f"messages[{index}].content",
            )
        texts.append(part["text"])
    return "\n".join(texts)


def _stops(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    stops = [raw] if isinstance(raw, str) else raw
    if (
        not isinstance(stops, list)
        or len(stops) > 4
        or not all(isinstance(stop, str) and stop for stop in stops)
    ):
        raise InvalidRequest(
            "'stop' must be a non-empty string or a list of up to 4 of them", param="stop"
        )
    return tuple(stops)


def _grammar_for(deployment: Deployment, response_format: Any) -> str | None:
    """The GBNF grammar llama.cpp needs to honour an OpenAI ``response_format``."""
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    from llama_cpp import llama_grammar

    if kind == "json_object":
        return str(llama_grammar.JSON_GBNF)
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise InvalidRequest(
                "'response_format.json_schema.schema' must be an object",
                param="response_format",
            )
        try:
            return str(llama_grammar.json_schema_to_gbnf(json.dumps(schema)))
        except Exception as exc:
            raise UnsupportedParameter(
                f"deployment {deployment.name} (local model) cannot enforce this JSON schema: "
                f"{exc}",
                param="response_format",
            ) from exc
    raise InvalidRequest(
        "'response_format.type' must be 'text', 'json_object' or 'json_schema'",
        param="response_format",
    )


def _number(body: JSONObject, name: str, default: float, low: float, high: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidRequest(f"'{name}' must be a number from {low} to {high}", param=name)
    return float(value)


def _integer(body: JSONObject, name: str, default: int, low: int | None, high: int | None) -> int:
    value = body.get(name)
    if value is None:
        return default
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or (low is not None and value < low)
        or (high is not None and value > high)
    ):
        bounds = f" from {low}" if low is not None else ""
        bounds += f" to {high}" if high is not None else ""
        raise InvalidRequest(f"'{name}' must be an integer{bounds}", param=name)
    return value
