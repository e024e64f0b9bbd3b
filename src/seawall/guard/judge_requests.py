"""The secondary-LLM judge's questions, asked through the gateway's own pipeline.

A judge call is a chat request of the gateway itself: routed, executed with the usual
retries and fallbacks, recorded with feature ``guard-judge`` (so its cost is on the
ledger), never cached and never guarded (the pipeline it uses has no guard stage).
"""

from __future__ import annotations

from seawall.guard.classifier import AskModel
from seawall.monitoring.answer import answer_of
from seawall.pipeline.context import Identity, RequestContext, new_request_id
from seawall.pipeline.pipeline import Handler
from seawall.providers.base import ChatResult

FEATURE = "guard-judge"
# The judge answers yes or no: a few tokens are plenty.
_MAX_TOKENS = 5


def judge_asker(answer: Handler, model: str) -> AskModel:
    """Asks ``model`` a question through ``answer`` (the own pipeline); its answer's text."""

    async def ask(question: str) -> str:
        ctx = RequestContext(
            request_id=new_request_id(),
            protocol="openai",
            operation="chat",
            raw_body=b"",
            identity=Identity(feature=FEATURE),
            cache_control="no-store",
        )
        ctx.body = {
            "model": model,
            "messages": [{"role": "user", "content": question}],
            "max_tokens": _MAX_TOKENS,
            "temperature": 0,
        }
        reply = await answer(ctx)
        found = answer_of(reply.body) if isinstance(reply, ChatResult) else None
        return found.text if found is not None else ""

    return ask
