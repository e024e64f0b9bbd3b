"""Stop a request's work the moment its client disconnects.

Once the body is read, the ASGI ``receive`` channel only ever says
``http.disconnect``. A watcher waits for that and cancels the handler's task, so
the upstream call, any wait for capacity and any pending retry stop at once: no
upstream capacity is spent on an answer nobody will read. Streams are watched by
the streaming response itself once they start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.types import Receive

from seawall.errors import ClientDisconnected

_T = TypeVar("_T")


async def unless_client_leaves(receive: Receive, work: Awaitable[_T]) -> _T:
    """Await ``work``; raise ``ClientDisconnected`` (having cancelled it) if the client leaves."""
    task = asyncio.current_task()
    assert task is not None
    left = asyncio.Event()
    watcher = asyncio.ensure_future(_watch(receive, task, left))
    try:
        return await work
    except asyncio.CancelledError:
        # Our own cancellation is turned into an ordinary, quiet error; any other
        # cancellation (server shutdown) goes on as it came.
        if left.is_set() and task.uncancel() == 0:
            raise ClientDisconnected("The client disconnected before the answer.") from None
        raise
    finally:
        watcher.cancel()


async def _watch(receive: Receive, task: asyncio.Task[object], left: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            left.set()
            task.cancel()
            return
