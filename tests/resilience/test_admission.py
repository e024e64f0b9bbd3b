"""Admission: slots at once while free, then a bounded queue in priority order, shedding fast."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from seawall.errors import InvalidRequest, Overloaded
from seawall.resilience.admission import Admission, AdmissionSettings, Priority
from tests.resilience.fake_clock import FakeClock


class SteppedClock(FakeClock):
    """A FakeClock whose sleeps last until the test advances time past their end.

    Deadlines race a sleep against the slot; FakeClock's instant sleeps would end every
    such race at once, so these tests move time by hand instead.
    """

    def __init__(self) -> None:
        super().__init__()
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    async def sleep(self, seconds: float) -> None:
        """Wait until the test has advanced time by ``seconds``."""
        self.sleeps.append(seconds)
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.time + seconds, wake))
        await wake

    def advance(self, seconds: float) -> None:
        """Move time forward and wake the sleeps that are over."""
        self.time += seconds
        for until, wake in self._sleepers:
            if until <= self.time and not wake.done():
                wake.set_result(None)
        self._sleepers = [(u, w) for u, w in self._sleepers if not w.done()]


async def settle() -> None:
    """Let every runnable task run until it blocks again."""
    for _ in range(20):
        await asyncio.sleep(0)


class Request:
    """A client request that holds its slot until the test finishes it."""

    def __init__(
        self,
        adm: Admission,
        name: str,
        started: list[str],
        priority: Priority,
        deadline: float | None,
    ) -> None:
        self.name = name
        self._finish = asyncio.Event()
        self._started = started
        self.task = asyncio.create_task(self._run(adm, priority, deadline))

    async def _run(self, adm: Admission, priority: Priority, deadline: float | None) -> None:
        async with adm.slot(priority, deadline):
            self._started.append(self.name)
            await self._finish.wait()

    async def finish(self) -> None:
        """Let the request complete and its slot go."""
        self._finish.set()
        await settle()

    @property
    def error(self) -> BaseException | None:
        """What the request failed with, once it has."""
        return self.task.exception() if self.task.done() else None


class Clients:
    """Sends requests through an ``Admission`` and records the order they start in."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.sent: list[Request] = []

    def send(
        self,
        adm: Admission,
        name: str,
        priority: Priority = Priority.NORMAL,
        deadline: float | None = None,
    ) -> Request:
        """Start a request that waits for a slot (or fails) in the background."""
        request = Request(adm, name, self.started, priority, deadline)
        self.sent.append(request)
        return request


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    made = Clients()
    yield made
    # Requests a test left holding or waiting are cancelled, as if their clients left.
    for request in made.sent:
        request.task.cancel()
    await asyncio.gather(*(r.task for r in made.sent), return_exceptions=True)


def admission(clock: FakeClock, max_concurrent: int = 1, max_queue: int = 10) -> Admission:
    return Admission(AdmissionSettings(max_concurrent=max_concurrent, max_queue=max_queue), clock)


async def teach_hold_time(adm: Admission, clock: FakeClock, seconds: float) -> None:
    """Run one request that holds its slot for ``seconds`` so the queue can estimate waits."""
    async with adm.slot(Priority.NORMAL, None):
        clock.advance(seconds)


async def test_free_slots_are_taken_at_once(clients: Clients) -> None:
    adm = admission(FakeClock(), max_concurrent=2)
    a, b = clients.send(adm, "a"), clients.send(adm, "b")
    await settle()
    assert clients.started == ["a", "b"]
    assert (adm.admitted, adm.queued_now) == (2, 0)
    await a.finish()
    await b.finish()
    assert adm.working_now == 0


async def test_a_waiter_gets_the_slot_the_moment_one_frees(clients: Clients) -> None:
    adm = admission(FakeClock())
    first = clients.send(adm, "first")
    second = clients.send(adm, "second")
    await settle()
    assert clients.started == ["first"]
    assert adm.queued_now == 1
    await first.finish()
    assert clients.started == ["first", "second"]
    assert (adm.queued_now, adm.working_now) == (0, 1)
    await second.finish()


async def test_a_high_priority_request_overtakes_waiting_low_ones(clients: Clients) -> None:
    adm = admission(FakeClock())
    holder = clients.send(adm, "holder")
    await settle()
    waiting = [
        clients.send(adm, "low-1", Priority.LOW),
        clients.send(adm, "normal", Priority.NORMAL),
        clients.send(adm, "low-2", Priority.LOW),
    ]
    await settle()
    waiting.append(clients.send(adm, "high", Priority.HIGH))
    await settle()
    await holder.finish()
    for _ in range(4):
        running = next(r for r in waiting if r.name == clients.started[-1])
        await running.finish()
    assert clients.started == ["holder", "high", "normal", "low-1", "low-2"]


async def test_a_full_queue_sheds_at_once_with_retry_after(clients: Clients) -> None:
    clock = FakeClock()
    adm = admission(clock, max_concurrent=1, max_queue=2)
    await teach_hold_time(adm, clock, 10.0)
    clients.send(adm, "holder")
    clients.send(adm, "wait-1")
    clients.send(adm, "wait-2")
    await settle()
    shed = clients.send(adm, "shed")
    await settle()
    assert isinstance(shed.error, Overloaded)
    assert shed.error.status == 503
    # Three slot releases away (the holder and two waiters), about 10 s each.
    assert shed.error.headers()["retry-after"] == "30"
    assert (adm.shed_full, adm.queued_now) == (1, 2)


async def test_retry_after_is_at_least_a_second_before_any_history(clients: Clients) -> None:
    adm = admission(FakeClock(), max_concurrent=1, max_queue=0)
    clients.send(adm, "holder")
    await settle()
    with pytest.raises(Overloaded) as refused:
        async with adm.slot(Priority.NORMAL, None):
            pass
    assert refused.value.retry_after == 1.0


async def test_the_queue_never_grows_beyond_its_limit(clients: Clients) -> None:
    adm = admission(FakeClock(), max_concurrent=2, max_queue=5)
    burst = [clients.send(adm, f"r{n}") for n in range(50)]
    await settle()
    assert len(clients.started) == 2
    assert adm.queued_now == 5
    assert adm.shed_full == 43
    assert sum(isinstance(r.error, Overloaded) for r in burst) == 43


async def test_a_high_priority_newcomer_evicts_the_newest_lowest_waiter(clients: Clients) -> None:
    adm = admission(FakeClock(), max_concurrent=1, max_queue=3)
    holder = clients.send(adm, "holder")
    await settle()
    normal = clients.send(adm, "normal", Priority.NORMAL)
    low_old = clients.send(adm, "low-old", Priority.LOW)
    low_new = clients.send(adm, "low-new", Priority.LOW)
    await settle()
    high = clients.send(adm, "high", Priority.HIGH)
    await settle()
    assert isinstance(low_new.error, Overloaded)
    assert low_new.error.retry_after is not None and low_new.error.retry_after >= 1.0
    assert low_old.error is None and normal.error is None and high.error is None
    assert (adm.evicted, adm.queued_now) == (1, 3)
    await holder.finish()
    assert clients.started == ["holder", "high"]
    await high.finish()
    await normal.finish()
    await low_old.finish()
    assert clients.started == ["holder", "high", "normal", "low-old"]


async def test_an_equal_priority_newcomer_does_not_evict(clients: Clients) -> None:
    adm = admission(FakeClock(), max_concurrent=1, max_queue=1)
    clients.send(adm, "holder")
    waiter = clients.send(adm, "waiter", Priority.LOW)
    await settle()
    newcomer = clients.send(adm, "newcomer", Priority.LOW)
    await settle()
    assert isinstance(newcomer.error, Overloaded)
    assert waiter.error is None
    assert (adm.evicted, adm.shed_full) == (0, 1)


async def test_a_request_that_could_not_start_before_its_deadline_is_refused_now(
    clients: Clients,
) -> None:
    clock = SteppedClock()
    adm = admission(clock, max_concurrent=1)
    await teach_hold_time(adm, clock, 2.0)
    clients.send(adm, "holder")
    await settle()
    hopeless = clients.send(adm, "hopeless", deadline=clock.now() + 1.0)
    hopeful = clients.send(adm, "hopeful", deadline=clock.now() + 5.0)
    await settle()
    assert isinstance(hopeless.error, Overloaded)
    assert hopeless.error.retry_after == pytest.approx(2.0)
    assert hopeful.error is None
    assert (adm.shed_deadline, adm.queued_now) == (1, 1)


async def test_without_history_a_request_with_a_deadline_is_queued(clients: Clients) -> None:
    clock = SteppedClock()
    adm = admission(clock, max_concurrent=1)
    holder = clients.send(adm, "holder")
    await settle()
    waiter = clients.send(adm, "waiter", deadline=clock.now() + 0.5)
    await settle()
    assert waiter.error is None and adm.queued_now == 1
    await holder.finish()
    assert clients.started == ["holder", "waiter"]


async def test_a_waiter_whose_deadline_passes_is_shed_with_retry_after(clients: Clients) -> None:
    clock = SteppedClock()
    adm = admission(clock, max_concurrent=1)
    holder = clients.send(adm, "holder")
    await settle()
    waiter = clients.send(adm, "waiter", deadline=clock.now() + 3.0)
    await settle()
    clock.advance(2.0)
    await settle()
    assert waiter.error is None
    clock.advance(1.5)
    await settle()
    assert isinstance(waiter.error, Overloaded)  # it never started, so not a 504
    assert waiter.error.retry_after is not None and waiter.error.retry_after >= 1.0
    assert (adm.shed_deadline, adm.queued_now) == (1, 0)
    await holder.finish()
    assert adm.working_now == 0


async def test_a_waiter_admitted_before_its_deadline_runs_to_the_end(clients: Clients) -> None:
    clock = SteppedClock()
    adm = admission(clock, max_concurrent=1)
    holder = clients.send(adm, "holder")
    await settle()
    waiter = clients.send(adm, "waiter", deadline=clock.now() + 3.0)
    await settle()
    clock.advance(1.0)
    await holder.finish()
    clock.advance(10.0)  # well past the deadline: enforcing it now is not admission's job
    await settle()
    assert waiter.error is None and clients.started == ["holder", "waiter"]
    await waiter.finish()
    assert waiter.task.done() and waiter.error is None


async def test_a_cancelled_waiter_frees_its_place(clients: Clients) -> None:
    adm = admission(FakeClock(), max_concurrent=1, max_queue=1)
    holder = clients.send(adm, "holder")
    await settle()
    gone = clients.send(adm, "gone")
    await settle()
    gone.task.cancel()  # the client disconnected
    await settle()
    assert adm.queued_now == 0
    later = clients.send(adm, "later")
    await settle()
    assert later.error is None and adm.queued_now == 1
    await holder.finish()
    assert clients.started == ["holder", "later"]


async def test_a_waiter_cancelled_as_its_slot_arrives_passes_the_slot_on(clients: Clients) -> None:
    adm = admission(FakeClock(), max_concurrent=1)
    async with adm.slot(Priority.NORMAL, None):
        unlucky = clients.send(adm, "unlucky")
        next_in_line = clients.send(adm, "next")
        await settle()
    # The slot has been handed to "unlucky", which has not run yet: its client leaves now.
    unlucky.task.cancel()
    await settle()
    assert unlucky.task.cancelled()
    assert clients.started == ["next"]
    assert adm.working_now == 1
    await next_in_line.finish()
    assert adm.working_now == 0


async def test_a_cancelled_request_with_a_deadline_leaves_nothing_behind(clients: Clients) -> None:
    clock = SteppedClock()
    adm = admission(clock, max_concurrent=1)
    holder = clients.send(adm, "holder")
    await settle()
    gone = clients.send(adm, "gone", deadline=clock.now() + 5.0)
    await settle()
    gone.task.cancel()
    await settle()
    assert adm.queued_now == 0
    clock.advance(10.0)
    await holder.finish()
    assert adm.working_now == 0
    assert adm.shed_deadline == 0


async def test_a_request_cancelled_while_working_returns_its_slot(clients: Clients) -> None:
    adm = admission(FakeClock(), max_concurrent=1)
    working = clients.send(adm, "working")
    waiter = clients.send(adm, "waiter")
    await settle()
    working.task.cancel()
    await settle()
    assert clients.started == ["working", "waiter"]
    await waiter.finish()
    assert adm.working_now == 0


@pytest.mark.parametrize(
    ("header", "priority"),
    [
        (None, Priority.NORMAL),
        ("high", Priority.HIGH),
        ("LOW", Priority.LOW),
        ("Normal", Priority.NORMAL),
    ],
)
def test_priority_header_values(header: str | None, priority: Priority) -> None:
    assert Priority.parse(header) is priority


@pytest.mark.parametrize("header", ["urgent", "", "0", "parse"])
def test_an_unknown_priority_is_a_client_error_naming_the_header(header: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        Priority.parse(header)
    assert refused.value.status == 400
    assert "x-seawall-priority" in refused.value.message
    assert "high, normal, low" in refused.value.message


@pytest.mark.parametrize("settings", [{"max_concurrent": 0}, {"max_queue": -1}])
def test_nonsense_settings_are_refused(settings: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="max_"):
        AdmissionSettings(**settings)
