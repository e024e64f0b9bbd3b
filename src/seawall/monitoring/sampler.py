"""Gauges of this process's state, sampled in the background twice a second.

* ``seawall_breaker_state``: each deployment's circuit breaker, 0 closed, 1 half-open,
  2 open (the worst any worker saw);
* ``seawall_queue_depth`` and ``seawall_requests_in_flight``: the admission queue;
* ``seawall_ledger_spool_bytes`` and ``seawall_ledger_pending_records``: request
  records not yet in the database (on local disk, in memory);
* ``seawall_ledger_dropped_records``: records lost (no memory and no disk);
* ``seawall_resident_memory_bytes``: resident memory, summed over workers;
* ``seawall_event_loop_lag_seconds``: how late the sampler's own timer fired, the
  worst of the last second: what every request on this loop waited extra.

Sampling costs nothing on the request path; with several workers each reports its
own and the multiprocess mode sums (or takes the maximum of) them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Sequence

from prometheus_client import Gauge

from seawall.resilience.admission import Admission
from seawall.resilience.circuit_breaker import BreakerSettings, BreakerState, BreakerStore
from seawall.stores.record_writer import RecordWriter

logger = logging.getLogger(__name__)

BREAKER_STATE = Gauge(
    "seawall_breaker_state",
    "Circuit breaker per deployment: 0 closed, 1 half-open, 2 open.",
    ["seawall_deployment"],
    multiprocess_mode="livemax",
)
QUEUE_DEPTH = Gauge(
    "seawall_queue_depth",
    "Requests waiting for an admission slot.",
    multiprocess_mode="livesum",
)
IN_FLIGHT = Gauge(
    "seawall_requests_in_flight",
    "Requests holding an admission slot (working or streaming).",
    multiprocess_mode="livesum",
)
SPOOL_BYTES = Gauge(
    "seawall_ledger_spool_bytes",
    "Bytes of request records spooled to local disk while the database is unreachable.",
    multiprocess_mode="livesum",
)
PENDING_RECORDS = Gauge(
    "seawall_ledger_pending_records",
    "Request records in memory, not yet written.",
    multiprocess_mode="livesum",
)
DROPPED_RECORDS = Gauge(
    "seawall_ledger_dropped_records",
    "Request records lost since start (no room in memory and no disk).",
    multiprocess_mode="livesum",
)
RESIDENT_MEMORY = Gauge(
    "seawall_resident_memory_bytes",
    "Resident memory of the serving processes.",
    multiprocess_mode="livesum",
)
LOOP_LAG = Gauge(
    "seawall_event_loop_lag_seconds",
    "How late a timer on the event loop fired, the worst of the last second.",
    multiprocess_mode="livemax",
)

_STATE_VALUES = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}
_PAGE = os.sysconf("SC_PAGE_SIZE")
_INTERVAL = 0.5
# Breakers are read every this many samples (a Redis round trip each with Redis).
_BREAKER_EVERY = 4


class StateSampler:
    """Samples the gauges until stopped."""

    def __init__(
        self,
        admission: Admission,
        writer: RecordWriter,
        breakers: BreakerStore,
        breaker_settings: BreakerSettings,
        deployments: Sequence[str],
        flush: Callable[[], None] = lambda: None,
    ) -> None:
        self._admission = admission
        # Hands the requests' tallied metrics over (see ``tallies``) with each sample.
        self._flush = flush
        self._writer = writer
        self._breakers = breakers
        self._breaker_settings = breaker_settings
        self._deployments = tuple(deployments)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin sampling on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="state-sampler")

    async def aclose(self) -> None:
        """Stop sampling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def sample(self, lag: float) -> None:
        """Set every gauge once; ``lag`` is the loop lag just measured."""
        LOOP_LAG.set(lag)
        QUEUE_DEPTH.set(self._admission.queued_now)
        IN_FLIGHT.set(self._admission.working_now)
        SPOOL_BYTES.set(self._writer.spool_bytes)
        PENDING_RECORDS.set(self._writer.pending)
        DROPPED_RECORDS.set(self._writer.dropped)
        RESIDENT_MEMORY.set(resident_bytes())
        self._flush()

    async def sample_breakers(self) -> None:
        """Read every deployment's breaker."""
        for deployment in self._deployments:
            state = await self._breakers.state(deployment, self._breaker_settings)
            BREAKER_STATE.labels(deployment).set(_STATE_VALUES[state])

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        worst = 0.0
        tick = 0
        while True:
            asked = loop.time()
            await asyncio.sleep(_INTERVAL)
            lag = max(0.0, loop.time() - asked - _INTERVAL)
            # The worst of this and the previous sample: about the last second.
            worst, shown = lag, max(worst, lag)
            try:
                self.sample(shown)
                if tick % _BREAKER_EVERY == 0:
                    await self.sample_breakers()
            except Exception:
                logger.exception("sampling the state gauges failed")
            tick += 1


def resident_bytes() -> int:
    """This process's resident memory, from /proc (0 where there is none)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except OSError:
        return 0
