"""How many tokens a request may use, estimated before it is answered.

Rate limits in tokens (the provider's TPM and the clients') are booked before the
answer exists: the prompt, counted offline, plus the output the request allows
(its ``max_completion_tokens``/``max_tokens``, capped, or the cap when it sets
none), as OpenAI counts it. The booking is settled against the real usage after.
"""

from __future__ import annotations

from seawall.config.schema import Operation
from seawall.pipeline.context import RequestContext
from seawall.providers.base import JSONObject
from seawall.tokens import TokenCounter


def prompt_tokens(counter: TokenCounter, body: JSONObject) -> int:
    """Tokens of a chat request's messages or an embeddings request's input."""
    messages = body.get("messages")
    if isinstance(messages, list):
        return counter.count_messages(m for m in messages if isinstance(m, dict))
    given = body.get("input")
    texts = given if isinstance(given, list) else [given]
    return sum(counter.count_text(t) for t in texts if isinstance(t, str))


def context_prompt_tokens(counter: TokenCounter, ctx: RequestContext) -> int:
    """The request's prompt tokens, counted on first use and kept on the context."""
    if ctx.prompt_tokens is None:
        ctx.prompt_tokens = prompt_tokens(counter, ctx.body)
    return ctx.prompt_tokens


def output_allowance(body: JSONObject, ceiling: int, operation: Operation) -> int:
    """The output tokens a request allows: its own maximum up to ``ceiling``; 0 for embeddings."""
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return min(value, ceiling)
    return ceiling if operation == "chat" else 0


def request_tokens(counter: TokenCounter, ctx: RequestContext, ceiling: int) -> int:
    """Prompt plus output allowance: what a request is booked for before its answer."""
    return context_prompt_tokens(counter, ctx) + output_allowance(ctx.body, ceiling, ctx.operation)
