"""Request records parked on local disk while the database cannot take them.

Each writer process appends to a file of its own, ``records-<pid>-<random>.jsonl`` in
the spool directory: one JSON object per line, each line written whole with one
``write(2)`` on a file opened ``O_APPEND``. When the store answers again the writer
reads the file back in batches (inserts are idempotent by request id, so a batch
replayed twice is harmless) and truncates it once it is read to the end.

Durability: an append is in the kernel when ``append`` returns, so killing the
process loses nothing appended. ``sync`` fsyncs; the writer calls it once per flush
interval while the spool grows and at close, so a power failure can also cost the
records of the last interval. The directory must be on a local disk (``flock``).

Leftovers: files of other processes (killed, or stopped during an outage) are
claimed with ``claim_leftovers``. A live writer holds an exclusive ``flock`` on its
file from before the file gets its final name until it closes, so a claim succeeds
only on files nobody owns, and only one process wins each. A claimed file is
deleted once replayed. A torn last line (a crash mid-write) or any unreadable line
is skipped with a warning, never fatal.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from seawall.stores.records import RequestRecord

logger = logging.getLogger(__name__)

_SUFFIX = ".jsonl"
_PREFIX = "records-"
# Files being created carry this suffix until they are locked; claims never see them.
_CREATING = ".new"
_FIELDS = frozenset(field.name for field in dataclasses.fields(RequestRecord))
# Bytes read per system call when replaying; a record is about half a kilobyte.
_READ_CHUNK = 256 * 1024


@dataclass(slots=True)
class _SpoolFile:
    """One locked spool file and how far it has been replayed."""

    path: Path
    fd: int
    owned: bool  # this process appends to it; otherwise a claimed leftover
    size: int
    offset: int = 0


@dataclass(frozen=True, slots=True)
class SpoolBatch:
    """Records read from the spool; ``RecordSpool.mark_replayed`` consumes them."""

    records: list[RequestRecord]
    source: Path
    end: int


class RecordSpool:
    """An append-only spool of request records in ``directory``, one file per process.

    Not thread-safe: call it from the event loop's thread only (``sync`` excepted).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.skipped = 0  # unreadable lines passed over while replaying
        self._own: _SpoolFile | None = None
        self._leftovers: list[_SpoolFile] = []
        self._closed = False

    @property
    def backlog_bytes(self) -> int:
        """Bytes appended or claimed and not yet replayed."""
        return sum(file.size - file.offset for file in self._sources())

    def append(self, records: Sequence[RequestRecord]) -> None:
        """Append records to this process's file; raises ``OSError`` if the disk refuses."""
        if not records:
            return
        if self._closed:
            raise RuntimeError("the record spool is closed")
        data = b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in records)
        own = self._own if self._own is not None else self._create()
        written = 0
        try:
            while written < len(data):
                written += os.write(own.fd, data[written:])
        except OSError:
            # Cut the partial line off, or the next append would glue onto it.
            os.ftruncate(own.fd, own.size)
            raise
        own.size += written

    def sync(self) -> None:
        """Flush this process's file to the disk (fsync); safe to call from a thread."""
        own = self._own
        if own is not None:
            os.fsync(own.fd)

    def claim_leftovers(self) -> int:
        """Take over the files of processes that are gone; returns how many were claimed."""
        if self._closed or not self.directory.is_dir():
            return 0
        held = {file.path for file in self._sources()}
        claimed = 0
        for path in sorted(self.directory.glob(f"{_PREFIX}*{_SUFFIX}")):
            if path not in held and (file := _claim(path)) is not None:
                self._leftovers.append(file)
                claimed += 1
        if claimed:
            logger.warning(
                "replaying %d request record spool file(s) left by earlier processes (%d bytes)",
                claimed,
                self.backlog_bytes,
            )
        return claimed

    def read_batch(self, limit: int) -> SpoolBatch | None:
        """Up to ``limit`` records not yet replayed, from one file; None when all are.

        Reading does not consume: the same records come back until ``mark_replayed``.
        """
        for file in self._sources():
            records, end = self._read(file, limit)
            if records:
                return SpoolBatch(records, file.path, end)
            # Nothing readable was left in this file: move past it.
            file.offset = end
            self._release_if_read(file)
        return None

    def mark_replayed(self, batch: SpoolBatch) -> None:
        """Record that ``batch`` is stored; a file read to its end is emptied or deleted."""
        file = next((f for f in self._sources() if f.path == batch.source), None)
        if file is not None:
            file.offset = max(file.offset, batch.end)
            self._release_if_read(file)

    def close(self) -> None:
        """Sync and release this process's file; it stays on disk only if records wait in it."""
        if self._closed:
            return
        self._closed = True
        own, self._own = self._own, None
        if own is not None:
            if own.offset >= own.size:
                _delete(own)
            else:
                os.fsync(own.fd)
                os.close(own.fd)
        for file in self._leftovers:
            os.close(file.fd)
        self._leftovers.clear()

    def _release_if_read(self, file: _SpoolFile) -> None:
        if file.offset < file.size:
            return
        if not file.owned:
            self._leftovers.remove(file)
            _delete(file)
        elif file.size:
            # Every byte appended so far is stored: empty the file rather than let it
            # grow for the life of the process; O_APPEND writes start over at 0.
            os.ftruncate(file.fd, 0)
            file.size = file.offset = 0

    def _sources(self) -> list[_SpoolFile]:
        return [*self._leftovers, *([self._own] if self._own is not None else [])]

    def _create(self) -> _SpoolFile:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{_PREFIX}{os.getpid()}-{secrets.token_hex(4)}{_SUFFIX}"
        creating = path.with_name(path.name + _CREATING)
        fd = os.open(creating, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            # Locked before it gets a name that claim_leftovers looks for.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(creating, path)
        except OSError:
            os.close(fd)
            creating.unlink(missing_ok=True)
            raise
        self._own = _SpoolFile(path, fd, owned=True, size=0)
        return self._own

    def _read(self, file: _SpoolFile, limit: int) -> tuple[list[RequestRecord], int]:
        """Records from ``file.offset`` on, and the offset just past the last line read."""
        records: list[RequestRecord] = []
        position = file.offset
        pending = b""
        while len(records) < limit and position + len(pending) < file.size:
            chunk = os.pread(file.fd, _READ_CHUNK, position + len(pending))
            if not chunk:
                break
            data = pending + chunk
            lines = data.split(b"\n")
            pending = lines.pop()  # the part after the last newline: incomplete so far
            for line in lines:
                position += len(line) + 1
                record = self._decode(line, file.path)
                if record is not None:
                    records.append(record)
                if len(records) >= limit:
                    return records, position
        if pending and position + len(pending) >= file.size:
            logger.warning(
                "skipped a torn last line (%d bytes) in request record spool %s",
                len(pending),
                file.path,
            )
            self.skipped += 1
            position += len(pending)
        return records, position

    def _decode(self, line: bytes, path: Path) -> RequestRecord | None:
        if not line.strip():
            return None
        try:
            fields: dict[str, Any] = orjson.loads(line)
            # Unknown fields (a newer Seawall wrote the file) are left out; missing ones
            # with defaults (an older one did) take them.
            return RequestRecord(**{k: v for k, v in fields.items() if k in _FIELDS})
        except (orjson.JSONDecodeError, TypeError, AttributeError) as exc:
            logger.warning(
                "skipped an unreadable line in request record spool %s (%s)",
                path,
                type(exc).__name__,
            )
            self.skipped += 1
            return None


def _claim(path: Path) -> _SpoolFile | None:
    """The file locked for this process, or None if someone holds it or it is gone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Whoever held the lock may have replayed and deleted the file meanwhile.
        opened, current = os.fstat(fd), os.stat(path)
        if (opened.st_dev, opened.st_ino) != (current.st_dev, current.st_ino):
            raise FileNotFoundError(path)
    except OSError:
        os.close(fd)
        return None
    return _SpoolFile(path, fd, owned=False, size=opened.st_size)


def _delete(file: _SpoolFile) -> None:
    # Unlinked while still locked, so a process that opened it meanwhile sees it gone.
    file.path.unlink(missing_ok=True)
    os.close(file.fd)
