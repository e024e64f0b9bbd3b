"""Report rows as JSON and CSV, the way a spreadsheet or ``jq`` reads them."""

from __future__ import annotations

import csv
import io
import json

import pytest

from seawall.control.report_format import format_rows, rows_to_csv, rows_to_json

COLUMNS = ("subject", "requests", "cost_usd")


def test_csv_has_a_header_and_the_columns_in_the_given_order() -> None:
    rows = [
        {"cost_usd": 0.1245, "subject": "dave", "requests": 2},
        {"subject": None, "requests": 1, "cost_usd": 0.0},
    ]
    assert rows_to_csv(rows, COLUMNS) == ("subject,requests,cost_usd\ndave,2,0.1245\n,1,0.0\n")


def test_an_empty_report_is_still_a_header() -> None:
    assert rows_to_csv([], COLUMNS) == "subject,requests,cost_usd\n"
    assert json.loads(rows_to_json([])) == []


def test_small_costs_are_fixed_point_not_exponents() -> None:
    text = rows_to_csv([{"subject": "a", "requests": 1, "cost_usd": 0.00001}], COLUMNS)
    assert text.splitlines()[1] == "a,1,0.00001"


def test_client_chosen_text_cannot_become_a_spreadsheet_formula() -> None:
    rows = [{"subject": '=HYPERLINK("http://x","y")', "requests": -1, "cost_usd": 0.5}]
    parsed = list(csv.reader(io.StringIO(rows_to_csv(rows, COLUMNS))))
    assert parsed[1] == ['\'=HYPERLINK("http://x","y")', "-1", "0.5"]


def test_commas_and_quotes_survive_a_round_trip() -> None:
    rows = [{"subject": 'team "a", west', "requests": 3, "cost_usd": 1.5}]
    parsed = list(csv.DictReader(io.StringIO(rows_to_csv(rows, COLUMNS))))
    assert parsed == [{"subject": 'team "a", west', "requests": "3", "cost_usd": "1.5"}]


def test_json_keeps_types_and_nulls() -> None:
    rows = [{"subject": None, "requests": 2, "cost_usd": 0.000165}]
    assert json.loads(format_rows(rows, COLUMNS, "json")) == rows


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="xml"):
        format_rows([], COLUMNS, "xml")
