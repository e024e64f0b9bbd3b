"""Report rows as JSON or CSV text, columns in the report's order."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence

import orjson

from seawall.control.analytics import Cell

FORMATS = ("json", "csv")
# A spreadsheet runs a cell that starts with one of these as a formula; user, feature
# and session ids come from client headers, so such text is quoted before export.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def rows_to_json(rows: Sequence[Mapping[str, Cell]], *, indent: bool = True) -> str:
    """A JSON array of row objects, ending with a newline."""
    option = orjson.OPT_INDENT_2 if indent else 0
    return orjson.dumps(list(rows), option=option).decode() + "\n"


def rows_to_csv(rows: Sequence[Mapping[str, Cell]], columns: Sequence[str]) -> str:
    """CSV with a header row of ``columns``; None is an empty cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(column)) for column in columns])
    return out.getvalue()


def format_rows(rows: Sequence[Mapping[str, Cell]], columns: Sequence[str], fmt: str) -> str:
    """The rows in ``fmt``: one of ``FORMATS``."""
    if fmt == "json":
        return rows_to_json(rows)
    if fmt == "csv":
        return rows_to_csv(rows, columns)
    raise ValueError(f"unknown report format {fmt!r}; expected one of {FORMATS}")


def _csv_cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # Fixed point, never 1e-05: spreadsheets and people read it the same way.
        text = f"{value:.6f}".rstrip("0")
        return text + "0" if text.endswith(".") else text
    if isinstance(value, int):
        return str(value)
    return "'" + value if value.startswith(_FORMULA_START) else value
