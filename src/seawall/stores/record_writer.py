"""Request records leave the hot path here and reach the store in batches.

Failure mode: **fails open, loses nothing accepted**. Requests keep being served
while the database is down. A record waits in memory for at most one flush interval
(``flush_seconds``); when a write fails, while the store is retried with backoff,
when a write takes longer than an interval, or when memory holds ``max_pending``
records, records go to the spool on local disk (``stores.record_spool``) instead.
Once the store answers again the spool is replayed in batches. Inserts are
idempotent by Seawall's request id, so a record sent twice (a write whose answer was
lost, a replay cut short) is stored once.

Shutdown (``aclose``, i.e. SIGTERM): what memory holds is written, or spooled if the
store is down or does not answer within ``close_timeout_seconds``; the next process
using the spool directory replays it. A killed process (SIGKILL) loses at most the
records of the last flush interval: everything older is in the store or on disk.
Without a spool, or while the disk refuses writes, records wait in memory up to
``max_pending``; past it they are dropped, counted in ``dropped`` and reported.

``submit`` never awaits; call it from the event loop's thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from seawall.resilience.clock import Clock, SystemClock
from seawall.stores.record_spool import RecordSpool
from seawall.stores.records import RecordStore, RequestRecord

logger = logging.getLogger(__name__)


class RecordWriter:
    """Buffers records and writes them in the background, every ``flush_seconds`` or
    as soon as ``batch_size`` records wait; spools them to disk while the store fails.

    Counters for metrics, read as plain attributes: ``written`` (records stored from
    memory), ``spooled`` (records appended to the spool), ``replayed`` (records stored
    from the spool, leftovers of earlier processes included), ``failed_flushes``
    (writes the store refused), ``dropped`` (records lost: no room in memory and no
    disk, or submitted after ``aclose``).
    """

    def __init__(
        self,
        store: RecordStore,
        flush_seconds: float,
        batch_size: int,
        *,
        spool: RecordSpool | None = None,
        max_pending: int = 100_000,
        max_retry_seconds: float = 10.0,
        close_timeout_seconds: float = 10.0,
        clock: Clock | None = None,
    ) -> None:
        if flush_seconds <= 0:
            raise ValueError("flush_seconds must be positive")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if max_pending < batch_size:
            raise ValueError("max_pending must be at least batch_size")
        self.written = 0
        self.spooled = 0
        self.replayed = 0
        self.failed_flushes = 0
        self.dropped = 0
        self._store = store
        self._spool = spool
        self._flush_seconds = flush_seconds
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._max_retry_seconds = max(max_retry_seconds, flush_seconds)
        self._close_timeout_seconds = close_timeout_seconds
        self._clock = clock or SystemClock()
        self._buffer: deque[RequestRecord] = deque()
        # The batch being written from memory; on disk already once a spill took it.
        self._in_flight: list[RequestRecord] = []
        self._in_flight_on_disk = False
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._watch: asyncio.TimerHandle | None = None
        self._closing = False
        self._closed = False
        # While the store fails: the clock time of the next attempt, and the wait after it.
        self._retry_at: float | None = None
        self._retry_delay = flush_seconds
        self._unsynced = False
        self._disk_failing = False
        self._dropped_reported = 0

    @property
    def spool_bytes(self) -> int:
        """Bytes of records on the local spool, waiting for the store."""
        return self._spool.backlog_bytes if self._spool is not None else 0

    @property
    def pending(self) -> int:
        """Records held in memory only: neither stored nor spooled yet."""
        in_flight = 0 if self._in_flight_on_disk else len(self._in_flight)
        return len(self._buffer) + in_flight

    def submit(self, record: RequestRecord) -> None:
        """Queue a record for writing; returns at once."""
        if self._closed:
            self.dropped += 1
            return
        if len(self._buffer) >= self._max_pending:
            self._spill()
            if len(self._buffer) >= self._max_pending:
                self.dropped += 1
                return
        self._buffer.append(record)
        # While the store is failing, a full batch must not cut the retry backoff short.
        if len(self._buffer) >= self._batch_size and self._retry_at is None:
            self._wake.set()

    def start(self) -> None:
        """Claim spool files left by earlier processes and start the background flusher."""
        if self._task is not None or self._closing:
            return
        if self._spool is not None:
            try:
                self._spool.claim_leftovers()
            except OSError:
                logger.exception(
                    "could not read the request record spool %s", self._spool.directory
                )
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="seawall-record-writer"
        )

    async def flush(self) -> None:
        """Write what memory holds, then replay the spool.

        On failure the records go to the spool (or stay in memory without one) and
        the error propagates.
        """
        async with self._flushing:
            self._watch = asyncio.get_running_loop().call_later(
                self._flush_seconds, self._on_slow_write
            )
            try:
                await self._write_memory()
                await self._replay_spool()
            except BaseException:
                self._requeue_in_flight()
                self._spill()
                raise
            finally:
                self._watch.cancel()

    async def aclose(self) -> None:
        """Stop the flusher, then write or spool what is left (the store stays open)."""
        if self._closed:
            return
        self._closing = True
        self._wake.set()
        try:
            async with asyncio.timeout(self._close_timeout_seconds):
                if self._task is not None:
                    await self._task
                if not self._backing_off():
                    await self.flush()
        except Exception as exc:
            self.failed_flushes += 1
            logger.warning(
                "request records not written at shutdown (%s: %s); spooling them",
                type(exc).__name__,
                exc,
            )
        self._task = None
        self._requeue_in_flight()
        self._spill()
        # No await from the spill to here: nothing submitted can slip between them.
        self._closed = True
        if self._spool is not None:
            self._close_spool(self._spool)
        if self.pending:
            logger.error("request records lost at shutdown: %d could not be written", self.pending)
        self._report_drops()

    async def _run(self) -> None:
        while not self._closing:
            await self._wait(self._flush_seconds)
            if self._closing:
                return
            await self._write_once()
            await self._sync_spool()
            self._report_drops()

    async def _write_once(self) -> None:
        if self._backing_off():
            self._spill()
            return
        try:
            await self.flush()
        except Exception as exc:
            self.failed_flushes += 1
            self._retry_delay = min(self._retry_delay * 2, self._max_retry_seconds)
            self._retry_at = self._clock.now() + self._retry_delay
            logger.warning(
                "request record store failed (%s: %s); %d records spooled so far, "
                "%d in memory, retry in %.1fs",
                type(exc).__name__,
                exc,
                self.spooled,
                self.pending,
                self._retry_delay,
            )
        else:
            if self._retry_at is not None:
                logger.warning("request record store recovered; records are written again")
            self._retry_at = None
            self._retry_delay = self._flush_seconds

    async def _write_memory(self) -> None:
        # Only what waits now: records arriving meanwhile go in the next flush.
        remaining = len(self._buffer)
        while remaining > 0 and self._buffer:
            size = min(remaining, self._batch_size, len(self._buffer))
            self._in_flight = [self._buffer.popleft() for _ in range(size)]
            self._in_flight_on_disk = False
            await self._store.write_batch(self._in_flight)
            self.written += size
            self._in_flight = []
            remaining -= size

    async def _replay_spool(self) -> None:
        if self._spool is None:
            return
        while (batch := self._spool.read_batch(self._batch_size)) is not None:
            await self._store.write_batch(batch.records)
            self._spool.mark_replayed(batch)
            self.replayed += len(batch.records)
            # A long replay must not leave new records waiting behind it.
            if len(self._buffer) >= self._batch_size:
                await self._write_memory()

    def _backing_off(self) -> bool:
        return self._retry_at is not None and self._clock.now() < self._retry_at

    def _on_slow_write(self) -> None:
        # A write has taken a whole interval: memory goes to disk, so that a kill
        # loses no more than that; a record also stored meanwhile is replayed harmlessly.
        self._spill()
        self._watch = asyncio.get_running_loop().call_later(
            self._flush_seconds, self._on_slow_write
        )

    def _requeue_in_flight(self) -> None:
        if self._in_flight and not self._in_flight_on_disk:
            self._buffer.extendleft(reversed(self._in_flight))
        self._in_flight = []
        self._in_flight_on_disk = False

    def _spill(self) -> None:
        """Move every record held only in memory to the spool, if there is one."""
        if self._spool is None or self._closed:
            return
        in_flight = [] if self._in_flight_on_disk else self._in_flight
        records = [*in_flight, *self._buffer]
        if not records:
            return
        try:
            self._spool.append(records)
        except OSError:
            if not self._disk_failing:
                logger.exception(
                    "cannot spool request records to %s; holding them in memory (limit %d)",
                    self._spool.directory,
                    self._max_pending,
                )
            self._disk_failing = True
            return
        self._disk_failing = False
        self._buffer.clear()
        self._in_flight_on_disk = bool(self._in_flight)
        self.spooled += len(records)
        self._unsynced = True

    async def _sync_spool(self) -> None:
        if self._spool is None or not self._unsynced:
            return
        self._unsynced = False
        try:
            # fsync can take milliseconds; the loop keeps serving meanwhile.
            await asyncio.to_thread(self._spool.sync)
        except OSError:
            logger.exception("cannot fsync the request record spool %s", self._spool.directory)

    def _close_spool(self, spool: RecordSpool) -> None:
        left = spool.backlog_bytes
        try:
            spool.close()
        except OSError:
            logger.exception("cannot close the request record spool %s", spool.directory)
        if left:
            logger.warning(
                "%d bytes of request records left in the spool %s; the next start replays them",
                left,
                spool.directory,
            )

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
                "dropped %d request records: no room in memory (limit %d) and no disk, "
                "or submitted after close",
                newly_dropped,
                self._max_pending,
            )
            self._dropped_reported = self.dropped
