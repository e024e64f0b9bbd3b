"""RecordSpool: records parked on disk come back exactly once per read, survive their process."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest

from seawall.stores.record_spool import RecordSpool
from seawall.stores.records import RequestRecord
from tests.stores.sample_records import sample_record


def replay_all(spool: RecordSpool, limit: int = 100) -> list[RequestRecord]:
    """Read and mark every batch, as the writer does after each successful insert."""
    replayed: list[RequestRecord] = []
    while (batch := spool.read_batch(limit)) is not None:
        replayed.extend(batch.records)
        spool.mark_replayed(batch)
    return replayed


def spool_files(directory: Path) -> list[Path]:
    """The spool files in ``directory``, whatever state they are in."""
    return sorted(directory.glob("records-*")) if directory.is_dir() else []


def test_records_come_back_exactly_as_appended(tmp_path: Path) -> None:
    spool = RecordSpool(tmp_path)
    records = [
        sample_record(),
        sample_record(status_code=502, error_type="UpstreamError", ttfb_ms=0.1 + 0.2),
        sample_record(stream=True, attempts="a:429,b:200", user="ü ✓", cost_usd=1e-9),
    ]
    spool.append(records[:2])
    spool.append(records[2:])

    assert replay_all(spool) == records
    spool.close()


def test_reading_does_not_consume_until_marked(tmp_path: Path) -> None:
    spool = RecordSpool(tmp_path)
    spool.append([sample_record() for _ in range(5)])

    first = spool.read_batch(3)
    again = spool.read_batch(3)
    assert first is not None and again is not None
    assert first.records == again.records

    spool.mark_replayed(first)
    rest = spool.read_batch(3)
    assert rest is not None and len(rest.records) == 2
    spool.close()


def test_batches_honour_the_limit_across_read_chunks(tmp_path: Path) -> None:
    spool = RecordSpool(tmp_path)
    # One record far larger than a read chunk, among many small ones.
    records = [sample_record() for _ in range(700)]
    records[350] = sample_record(attempts="x" * 600_000)
    spool.append(records)

    sizes: list[int] = []
    replayed: list[RequestRecord] = []
    while (batch := spool.read_batch(300)) is not None:
        sizes.append(len(batch.records))
        replayed.extend(batch.records)
        spool.mark_replayed(batch)

    assert sizes == [300, 300, 100]
    assert replayed == records
    spool.close()


def test_a_fully_replayed_file_is_emptied_and_removed_at_close(tmp_path: Path) -> None:
    spool = RecordSpool(tmp_path)
    spool.append([sample_record() for _ in range(3)])
    [path] = spool_files(tmp_path)
    assert path.stat().st_size > 0

    replay_all(spool)
    assert path.stat().st_size == 0
    assert spool.backlog_bytes == 0

    spool.close()
    assert spool_files(tmp_path) == []


def test_records_appended_during_a_replay_are_not_lost(tmp_path: Path) -> None:
    spool = RecordSpool(tmp_path)
    spool.append([sample_record() for _ in range(2)])
    batch = spool.read_batch(10)
    assert batch is not None

    # The insert is awaited; meanwhile the store fails again for other records.
    later = [sample_record() for _ in range(3)]
    spool.append(later)
    spool.mark_replayed(batch)

    assert replay_all(spool) == later
    spool.close()


def test_nothing_is_written_until_records_are_appended(tmp_path: Path) -> None:
    spool = RecordSpool(tmp_path / "spool")
    assert spool.read_batch(10) is None
    spool.close()
    assert not (tmp_path / "spool").exists()


def test_records_left_at_close_are_replayed_by_the_next_process(tmp_path: Path) -> None:
    records = [sample_record() for _ in range(4)]
    first = RecordSpool(tmp_path)
    first.append(records)
    first.close()

    second = RecordSpool(tmp_path)
    assert second.claim_leftovers() == 1
    assert replay_all(second) == records
    assert spool_files(tmp_path) == []
    second.close()


def test_a_partly_replayed_leftover_is_replayed_whole(tmp_path: Path) -> None:
    # Inserts are idempotent, so replaying the first part again is harmless; losing none matters.
    records = [sample_record() for _ in range(4)]
    first = RecordSpool(tmp_path)
    first.append(records)
    batch = first.read_batch(2)
    assert batch is not None
    first.mark_replayed(batch)
    first.close()

    second = RecordSpool(tmp_path)
    second.claim_leftovers()
    assert replay_all(second) == records
    second.close()


def test_a_live_spool_is_never_claimed(tmp_path: Path) -> None:
    live = RecordSpool(tmp_path)
    live.append([sample_record()])

    other = RecordSpool(tmp_path)
    assert other.claim_leftovers() == 0
    assert other.read_batch(10) is None

    assert len(replay_all(live)) == 1
    live.close()
    other.close()


def test_each_leftover_goes_to_one_claimant_only(tmp_path: Path) -> None:
    for _ in range(3):
        dead = RecordSpool(tmp_path)
        dead.append([sample_record() for _ in range(2)])
        dead.close()

    first, second = RecordSpool(tmp_path), RecordSpool(tmp_path)
    assert first.claim_leftovers() == 3
    assert second.claim_leftovers() == 0
    assert len(replay_all(first)) == 6
    assert second.claim_leftovers() == 0
    first.close()
    second.close()


def test_a_leftover_released_unreplayed_can_be_claimed_again(tmp_path: Path) -> None:
    dead = RecordSpool(tmp_path)
    dead.append([sample_record()])
    dead.close()

    # Claimed, then the claimant stops during an outage before replaying it.
    stopped = RecordSpool(tmp_path)
    assert stopped.claim_leftovers() == 1
    stopped.close()

    assert len(spool_files(tmp_path)) == 1
    later = RecordSpool(tmp_path)
    assert later.claim_leftovers() == 1
    assert len(replay_all(later)) == 1
    later.close()


def test_a_torn_last_line_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    records = [sample_record() for _ in range(3)]
    dead = RecordSpool(tmp_path)
    dead.append(records)
    dead.close()
    [path] = spool_files(tmp_path)
    # The process died in the middle of writing a fourth line.
    with path.open("ab") as file:
        file.write(orjson.dumps(sample_record())[:57])

    spool = RecordSpool(tmp_path)
    spool.claim_leftovers()
    with caplog.at_level(logging.WARNING, logger="seawall.stores.record_spool"):
        assert replay_all(spool) == records
    assert "torn last line" in caplog.text
    assert spool.skipped == 1
    assert spool_files(tmp_path) == []
    spool.close()


def test_unreadable_lines_are_skipped_and_the_rest_replayed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = [sample_record() for _ in range(2)]
    older = orjson.loads(orjson.dumps(sample_record()))
    for newer_field in ("tenant_id", "key_id", "client_ip", "cost_usd", "route_decision"):
        older.pop(newer_field)
    newer = {**orjson.loads(orjson.dumps(sample_record())), "field_from_the_future": 1}
    lines = [
        orjson.dumps(good[0]),
        b'{"request_id": "req_half',
        orjson.dumps(["not", "a", "record"]),
        orjson.dumps({"request_id": "req_missing_fields"}),
        orjson.dumps(older),
        orjson.dumps(newer),
        b"",
        orjson.dumps(good[1]),
    ]
    (tmp_path / "records-1-deadbeef.jsonl").write_bytes(b"\n".join(lines) + b"\n")

    spool = RecordSpool(tmp_path)
    spool.claim_leftovers()
    with caplog.at_level(logging.WARNING, logger="seawall.stores.record_spool"):
        replayed = replay_all(spool)

    assert [r.request_id for r in replayed] == [
        good[0].request_id,
        older["request_id"],
        newer["request_id"],
        good[1].request_id,
    ]
    assert replayed[1].cost_usd == 0.0 and replayed[1].tenant_id is None
    assert spool.skipped == 3
    assert caplog.text.count("unreadable line") == 3
    spool.close()


def test_a_file_of_only_unreadable_lines_is_removed(tmp_path: Path) -> None:
    (tmp_path / "records-1-0badf00d.jsonl").write_bytes(b"garbage\n{\n")
    spool = RecordSpool(tmp_path)
    spool.claim_leftovers()
    assert spool.read_batch(10) is None
    assert spool_files(tmp_path) == []
    spool.close()


_APPEND_AND_WAIT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from seawall.stores.record_spool import RecordSpool
    from tests.stores.sample_records import sample_record

    spool = RecordSpool(Path(sys.argv[1]))
    records = [sample_record() for _ in range(int(sys.argv[2]))]
    spool.append(records)
    print(" ".join(r.request_id for r in records), flush=True)
    time.sleep(60)
    """
)


def test_records_of_a_killed_process_are_claimed_once_it_is_gone(tmp_path: Path) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", _APPEND_AND_WAIT, str(tmp_path), "5"],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert writer.stdout is not None
        appended = writer.stdout.readline().decode().split()
        assert len(appended) == 5

        while_alive = RecordSpool(tmp_path)
        assert while_alive.claim_leftovers() == 0
        while_alive.close()

        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=10)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()

    after = RecordSpool(tmp_path)
    assert after.claim_leftovers() == 1
    assert [r.request_id for r in replay_all(after)] == appended
    after.close()
    assert spool_files(tmp_path) == []
