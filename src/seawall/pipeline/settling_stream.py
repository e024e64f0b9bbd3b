"""A stream that settles something (tokens, money) once when it ends, however it ends.

Completed or failed, the settlement is awaited before the stream's end reaches the
caller. Abandoned (the client left: closed, or cancelled mid-iteration), awaiting
could itself be cancelled, so the settlement runs in the owner's ``Background``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from seawall.pipeline.background import Background
from seawall.providers.base import ChatStream, JSONObject, Usage

Settle = Callable[[Usage], Coroutine[Any, Any, None]]


class SettlingStream:
    """Relays ``inner`` and calls ``settle(usage so far)`` exactly once at its end."""

    def __init__(self, inner: ChatStream, settle: Settle, background: Background) -> None:
        self._inner = inner
        self._settle: Settle | None = settle
        self._background = background

    @property
    def usage(self) -> Usage:
        """The inner stream's usage."""
        return self._inner.usage

    async def __aiter__(self) -> AsyncIterator[JSONObject]:
        try:
            async for chunk in self._inner:
                yield chunk
        except (GeneratorExit, asyncio.CancelledError):
            self._settle_later()
            raise
        except BaseException:
            await self._settle_now()
            raise
        await self._settle_now()

    async def aclose(self) -> None:
        """Close the inner stream and settle with what it used."""
        try:
            await self._inner.aclose()
        finally:
            self._settle_later()

    def _take(self) -> Settle | None:
        settle, self._settle = self._settle, None
        return settle

    async def _settle_now(self) -> None:
        settle = self._take()
        if settle is not None:
            await settle(self._inner.usage)

    def _settle_later(self) -> None:
        settle = self._take()
        if settle is not None:
            self._background.run(settle(self._inner.usage))
