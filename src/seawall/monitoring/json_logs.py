"""Seawall's log: one JSON object per line on stderr, tagged with the request it is about.

A line carries ``ts`` (ISO 8601, UTC), ``level``, ``logger`` and ``message``; the
``request_id`` when it was logged while a request was handled; the fields a call
passed with ``extra=`` (values JSON cannot hold are written as text); and ``exc``, the
traceback, when there is one. ``monitoring.logs.format: text`` writes the classic
one-line format instead, with the same request id and fields as ``key=value``.

The request id travels in a context variable, set once per request where the id is
made (``http.request_id`` and ``http.serving_app``); every task a request starts
inherits it. Lines are formatted where they are logged, so they see that variable,
and written to stderr by a thread: a slow reader of stderr never stalls the event loop.

Only the ``seawall`` CLI applies ``logging_config`` (and uvicorn, given it, in each
worker process); the library itself never configures logging.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from contextvars import ContextVar
from itertools import islice
from queue import SimpleQueue
from types import FrameType
from typing import Any, TextIO

import orjson

from seawall.config import Settings

# The id of the request being handled in this context, None outside requests.
CURRENT_REQUEST_ID: ContextVar[str | None] = ContextVar("seawall_request_id", default=None)

# A LogRecord's own attributes come first in its __dict__, then what ``extra=`` added.
_RECORD_ATTRIBUTES = vars(logging.makeLogRecord({}))
_OWN_ATTRIBUTES = len(_RECORD_ATTRIBUTES)
# Not fields either: what formatters add to a record, and the copy of each message
# uvicorn passes with terminal colour codes.
_NOT_FIELDS = frozenset(_RECORD_ATTRIBUTES) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The request id, then the fields passed with ``extra=`` (an explicit request id wins)."""
    fields: dict[str, Any] = {}
    request_id = CURRENT_REQUEST_ID.get()
    if request_id is not None:
        fields["request_id"] = request_id
    for name, value in islice(vars(record).items(), _OWN_ATTRIBUTES, None):
        if name not in _NOT_FIELDS:
            fields[name] = value
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def __init__(self) -> None:
        super().__init__()
        # The last second formatted and its text: one tuple, replaced whole (threads).
        self._second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        second = int(record.created)
        cached = self._second
        if cached[0] != second:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            cached = self._second = (second, text)
        line: dict[str, Any] = {
            "ts": f"{cached[1]}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        extras = extra_fields(record)
        line.update(extras)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        try:
            return _dumps(line)
        except orjson.JSONEncodeError:
            # A value even str() cannot make JSON-safe (an int beyond 64 bits, a str()
            # that raises) is written as its repr.
            line.update({name: _json_safe(value) for name, value in extras.items()})
            return _dumps(line)


def _dumps(line: dict[str, Any]) -> str:
    return orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _json_safe(value: Any) -> Any:
    try:
        orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        return repr(value)
    return value


class TextFormatter(logging.Formatter):
    """The classic line, then the request id and extra fields as ``key=value``."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The line before any traceback: fields stay on the first line."""
        line = super().formatMessage(record)
        fields = " ".join(f"{name}={value}" for name, value in extra_fields(record).items())
        return f"{line} {fields}" if fields else line


class StderrWriter(logging.Handler):
    """Formats each line where it is logged and queues it; a thread writes it to stderr."""

    def __init__(self, log_format: str = "json") -> None:
        super().__init__()
        self.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
        self._lines: SimpleQueue[str | None] = SimpleQueue()
        self._writer: threading.Thread | None = threading.Thread(
            target=_write_lines, args=(self._lines, sys.stderr), name="log-writer", daemon=True
        )
        self._writer.start()
        logging.captureWarnings(True)
        _write_queued_lines_before_sigterm()

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the formatted line."""
        try:
            self._lines.put(self.format(record))
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        """Write the lines still queued, then stop the thread (at exit, or when replaced)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            self._lines.put(None)
            writer.join()
        super().close()


def _write_lines(lines: SimpleQueue[str | None], stream: TextIO) -> None:
    while (line := lines.get()) is not None:
        try:
            stream.write(line + "\n")
            if lines.empty():  # one flush for a burst of lines
                stream.flush()
        except (OSError, ValueError):
            pass  # stderr is gone: nowhere left to say so


def logging_config(settings: Settings) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of a Seawall process: every line to stderr.

    ``seawall serve`` applies it and hands it to uvicorn, which applies it again in
    each worker process before that process serves; uvicorn's loggers, which it then
    leaves without handlers of their own, write through it too.
    """
    return {
        "version": 1,
        # Modules' loggers exist from import time and must keep logging.
        "disable_existing_loggers": False,
        "handlers": {
            "stderr": {
                "()": f"{__name__}.{StderrWriter.__name__}",
                "log_format": settings.monitoring.logs.format,
            }
        },
        "root": {
            "handlers": ["stderr"],
            "level": getattr(logging, settings.server.log_level.upper(), logging.INFO),
        },
    }


def _write_queued_lines_before_sigterm() -> None:
    # uvicorn ends a graceful shutdown by raising SIGTERM again under the handler it
    # found at start, by default one that ends the process at once: no exit handlers,
    # and the lines still queued lost. This handler writes them first.
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, _write_log_then_terminate):
        signal.signal(signal.SIGTERM, _write_log_then_terminate)


def _write_log_then_terminate(signum: int, frame: FrameType | None) -> None:
    logging.shutdown()
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)
