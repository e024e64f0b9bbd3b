"""Request records leave the hot path here and reach the store in batches.

Failure mode: **fails open**. Requests keep being served while the database is down;
their records wait in memory and are retried, with backoff, until a write succeeds,
so nothing accepted is lost while the process lives. The buffer is bounded
(``max_pending``): past it, new records are dropped, counted in ``dropped`` and
reported with a warning. A crash or a shutdown during an outage still loses what is
held; spooling to disk is a later issue.

``submit`` never blocks and never awaits; call it from the event loop's thread.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque

from seawall.stores.records import RecordStore, RequestRecord

logger = logging.getLogger(__name__)


class RecordWriter:
    """Buffers records and writes them in the background, every ``flush_seconds`` or
    as soon as ``batch_size`` records wait.

    Counters for metrics, read as plain attributes: ``written`` (records stored),
    ``pending`` (records waiting), ``failed_flushes`` (writes the store refused),
    ``dropped`` (records lost to a full buffer or submitted after ``aclose``).
    """

    def __init__(
        self,
        store: RecordStore,
        flush_seconds: float,
        batch_size: int,
        *,
        max_pending: int = 100_000,
        max_retry_seconds: float = 10.0,
    ) -> None:
        if flush_seconds <= 0:
            raise ValueError("flush_seconds must be positive")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if max_pending < batch_size:
            raise ValueError("max_pending must be at least batch_size")
        self.written = 0
        self.failed_flushes = 0
        self.dropped = 0
        self._store = store
        self._flush_seconds = flush_seconds
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._max_retry_seconds = max(max_retry_seconds, flush_seconds)
        self._buffer: deque[RequestRecord] = deque()
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._retrying = False
        self._dropped_reported = 0

    @property
    def pending(self) -> int:
        """Records accepted but not yet stored."""
        return len(self._buffer)

    def submit(self, record: RequestRecord) -> None:
        """Queue a record for writing; returns at once."""
        if self._closing or len(self._buffer) >= self._max_pending:
            self.dropped += 1
            return
        self._buffer.append(record)
        # While the store is failing, a full batch must not cut the retry backoff short.
        if len(self._buffer) >= self._batch_size and not self._retrying:
            self._wake.set()

    def start(self) -> None:
        """Start the background flusher on the running event loop."""
        if self._task is None and not self._closing:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="seawall-record-writer"
            )

    async def flush(self) -> None:
        """Write every record pending now; on failure they stay pending and the error propagates."""
        async with self._flushing:
            # Only what waits now: records arriving meanwhile go in the next flush.
            remaining = len(self._buffer)
            while remaining > 0:
                batch = list(itertools.islice(self._buffer, min(remaining, self._batch_size)))
                await self._store.write_batch(batch)
                # Only this method removes records, and submit only appends, so the
                # batch is still the front of the buffer.
                for _ in batch:
                    self._buffer.popleft()
                self.written += len(batch)
                remaining -= len(batch)

    async def aclose(self) -> None:
        """Stop the background flusher and write what is left (the store stays open)."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        try:
            await self.flush()
        except Exception:
            self.failed_flushes += 1
            logger.exception(
                "request records lost at shutdown: %d could not be written", self.pending
            )
        self._report_drops()

    async def _run(self) -> None:
        delay = self._flush_seconds
        while not self._closing:
            await self._wait(delay)
            if self._closing:
                return
            try:
                await self.flush()
            except Exception as exc:
                self.failed_flushes += 1
                self._retrying = True
                self._wake.clear()
                delay = min(delay * 2, self._max_retry_seconds)
                logger.warning(
                    "request record store failed (%s: %s); keeping %d records, retry in %.1fs",
                    type(exc).__name__,
                    exc,
                    self.pending,
                    delay,
                )
            else:
                if self._retrying:
                    logger.warning("request record store recovered; records are written again")
                self._retrying = False
                delay = self._flush_seconds
            self._report_drops()

    async def _wait(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        except TimeoutError:
            pass
        self._wake.clear()

    def _report_drops(self) -> None:
        # Logged here, off the hot path, once per flush rather than once per record.
        newly_dropped = self.dropped - self._dropped_reported
        if newly_dropped:
            logger.warning(
                "dropped %d request records: buffer full (limit %d) or submitted after close",
                newly_dropped,
                self._max_pending,
            )
            self._dropped_reported = self.dropped
