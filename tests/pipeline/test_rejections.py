"""Refusals are counted one by one but logged as one summary line per interval."""

from __future__ import annotations

import logging

import pytest

from seawall.errors import CapacityExhausted, Overloaded
from seawall.pipeline.rejections import RejectionLog
from tests.resilience.fake_clock import FakeClock


def test_a_flood_of_refusals_writes_one_line_a_second(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    log = RejectionLog(clock.now, interval=1.0)
    with caplog.at_level(logging.WARNING, logger="seawall.rejections"):
        for _ in range(500):
            log.note(CapacityExhausted("no capacity"))
            log.note(Overloaded("queue full"))
            clock.advance(0.001)  # a thousand refusals in one second
        clock.advance(1.0)
        log.note(Overloaded("queue full"))

    assert log.total == {"capacity_exhausted": 500, "overloaded": 501}
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    # The second line sums up everything refused since the first, no traceback attached.
    assert lines[1].endswith("capacity_exhausted=499 overloaded=501")
    assert all(r.exc_info is None for r in caplog.records)
