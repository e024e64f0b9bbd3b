"""A stream whose first chunk already arrived, and which reports how it ended.

The executor reads the first chunk before answering, so that a stream that fails
before its first byte can still fall back to another deployment; once the client
has a byte, nothing is retried. ``on_end`` runs exactly once: with the error that
broke the stream, or None when it completed or the client left (``aclose``).
The request's deadline bounds the whole stream: past it, the stream breaks with
``DeadlineExceeded``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable

from seawall.errors import DeadlineExceeded
from seawall.providers.base import ChatStream, JSONObject, Usage
from seawall.resilience.clock import Clock

EndHook = Callable[[BaseException | None], Awaitable[None]]


class AttemptStream:
    """``ChatStream`` that replays a prefetched first chunk, then relays the rest."""

    def __init__(
        self,
        inner: ChatStream,
        chunks: AsyncIterator[JSONObject],
        first: JSONObject | None,
        on_end: EndHook,
        clock: Clock,
        deadline: float,
    ) -> None:
        self._inner = inner
        self._chunks = chunks
        self._first = first
        self._on_end: EndHook | None = on_end
        self._clock = clock
        self._deadline = deadline

    @property
    def usage(self) -> Usage:
        """The upstream stream's usage (final once iteration ended)."""
        return self._inner.usage

    async def __aiter__(self) -> AsyncIterator[JSONObject]:
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        while True:
            try:
                async with asyncio.timeout(self._deadline - self._clock.now()):
                    chunk = await anext(self._chunks)
            except StopAsyncIteration:
                break
            except TimeoutError:
                error = DeadlineExceeded(
                    "The request's deadline passed while the answer was streaming."
                )
                await self._end(error)
                raise error from None
            except Exception as error:
                await self._end(error)
                raise
            yield chunk
        await self._end(None)

    async def aclose(self) -> None:
        """Release the upstream stream (the client left, or the relay finished)."""
        if isinstance(self._chunks, AsyncGenerator):
            # Runs the backend's own cleanup first, so the usage so far is counted.
            await self._chunks.aclose()
        await self._end(None)
        await self._inner.aclose()

    async def _end(self, error: BaseException | None) -> None:
        hook, self._on_end = self._on_end, None
        if hook is not None:
            await hook(error)
