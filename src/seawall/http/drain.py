"""Graceful shutdown: SIGTERM drains an instance instead of dropping what it serves.

uvicorn, on SIGTERM, closes the listening socket, lets the open requests and streams
finish for up to ``timeout_graceful_shutdown`` seconds, then runs the app's shutdown,
which flushes the ledger (``Services.aclose``). ``Drain`` puts a drain period in front
of that and makes the end of the grace period honest:

1. SIGTERM: ``/health/ready`` answers 503 ``draining`` at once, while the instance goes
   on serving for ``server.drain_seconds``, time for Kubernetes or a load balancer that
   polls readiness to stop sending it traffic before its socket closes.
2. Then SIGTERM goes on to uvicorn: no new connections; the requests and streams in
   flight get ``server.grace_seconds`` to finish.
3. Whatever is still running when the grace period ends is cancelled, and its ledger
   record says the instance shut down (503 ``ShutDownMidway``), not that the client
   left (``pipeline.record.Stopping``).

A second SIGTERM skips what is left of the drain period.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from seawall.pipeline.record import Stopping

logger = logging.getLogger("seawall.shutdown")

_SignalHandler = Callable[[int, FrameType | None], Any]


class Drain:
    """The serving requests in flight, and what SIGTERM does to them."""

    def __init__(self, drain_seconds: float, grace_seconds: float) -> None:
        self.drain_seconds = drain_seconds
        self.grace_seconds = grace_seconds
        self.draining = False
        self.requests: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._forward: _SignalHandler | None = None
        self._stop_accepting: asyncio.TimerHandle | None = None
        self._accepting = True
        self._stopping = Stopping()

    @property
    def cutting(self) -> bool:
        """Whether the grace period is over and unfinished requests are being cut."""
        return self._stopping.past_grace

    def install(self, loop: asyncio.AbstractEventLoop, stopping: Stopping) -> None:
        """Take SIGTERM over from the server's own handler, which it is passed on to.

        Only in a serving process: the main thread, with a server (uvicorn) that
        handles SIGTERM already. ``stopping`` is the pipeline's (``Services``).
        """
        current = signal.getsignal(signal.SIGTERM)
        if threading.current_thread() is not threading.main_thread() or not callable(current):
            return
        self._loop = loop
        self._stopping = stopping
        self._forward = current
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        assert self._loop is not None
        if self.draining:
            self._loop.call_soon_threadsafe(self._end_drain)
            return
        self.draining = True
        self._loop.call_soon_threadsafe(self._begin)

    def _begin(self) -> None:
        assert self._loop is not None
        if not self._accepting:  # a second SIGTERM came first
            return
        logger.info(
            "SIGTERM: draining with %d request(s) in flight; /health/ready answers 503; "
            "serving goes on for %.1f s, then in-flight requests get %.1f s to finish",
            len(self.requests),
            self.drain_seconds,
            self.grace_seconds,
        )
        self._stop_accepting = self._loop.call_later(self.drain_seconds, self._end_drain)

    def _end_drain(self) -> None:
        assert self._loop is not None and self._forward is not None
        if not self._accepting:
            return
        self._accepting = False
        if self._stop_accepting is not None:
            self._stop_accepting.cancel()
        logger.info(
            "drain period over: accepting no more connections; %d request(s) in flight",
            len(self.requests),
        )
        self._forward(signal.SIGTERM, None)
        # uvicorn's own timeout (``cli.serve``) is a second longer: the cut is ours.
        self._loop.call_later(self.grace_seconds, self._cut)

    def _cut(self) -> None:
        if not self.requests:
            return
        logger.warning(
            "grace period over: cutting %d unfinished request(s); their records say 503",
            len(self.requests),
        )
        self._stopping.past_grace = True
        for task in self.requests:
            task.cancel("the shutdown grace period is over")

    def report_stopped(self) -> None:
        """Log how the drain ended; called once the app has shut down (ledger flushed)."""
        if self.draining:
            logger.info("stopped: every request is answered or recorded; the ledger is flushed")
