"""What every provider backend offers the pipeline.

The canonical wire format inside Seawall is OpenAI's: a chat request is the
OpenAI request body (a dict, ``model`` already set to the upstream model), a
chat result is an OpenAI ``chat.completion`` object, and a stream yields OpenAI
``chat.completion.chunk`` objects. Backends translate to and from their own
wire format and report token usage; the pipeline never looks at provider
specifics.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from seawall.config.schema import Deployment

JSONObject = dict[str, Any]


@dataclass(slots=True)
class Usage:
    """Token counts of one upstream call."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    # True when the counts came from Seawall's tokenizer, not the upstream.
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def as_openai(self) -> JSONObject:
        """The OpenAI ``usage`` object."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(slots=True)
class ChatResult:
    """A complete chat answer in OpenAI shape, with its usage."""

    body: JSONObject
    usage: Usage


@dataclass(slots=True)
class EmbeddingResult:
    """An embeddings answer in OpenAI shape, with its usage."""

    body: JSONObject
    usage: Usage


class ChatStream(Protocol):
    """An open upstream stream of OpenAI chunk objects.

    Iterating yields chunks; ``usage`` is final once iteration ends (from the
    upstream when it reports it, counted otherwise). ``aclose`` releases the
    upstream connection early, e.g. when the client went away.
    """

    @property
    def usage(self) -> Usage:
        """Token usage; final once iteration ended."""
        ...

    def __aiter__(self) -> AsyncIterator[JSONObject]: ...

    async def aclose(self) -> None: ...


class Backend(Protocol):
    """One provider kind's way of answering; one instance serves all its deployments."""

    async def chat(self, deployment: Deployment, body: JSONObject) -> ChatResult:
        """Answer a non-streaming chat request."""
        ...

    async def open_stream(self, deployment: Deployment, body: JSONObject) -> ChatStream:
        """Start a streaming chat request; returns once the upstream accepted it."""
        ...

    async def embed(self, deployment: Deployment, body: JSONObject) -> EmbeddingResult:
        """Answer an embeddings request."""
        ...

    def usable(self, deployment: Deployment) -> bool:
        """Whether this deployment can be served at all (key present, file found)."""
        ...

    async def aclose(self) -> None:
        """Release connections, threads and models."""
        ...
