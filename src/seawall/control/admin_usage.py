"""Admin API: usage reports (the same as ``seawall usage``), as JSON or CSV."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse

from seawall.control.analytics import REPORTS, run_report
from seawall.control.report_filters import parse_filters
from seawall.control.report_format import FORMATS, rows_to_csv
from seawall.errors import InvalidRequest
from seawall.services import Services


async def list_reports(request: Request, services: Services) -> Any:
    """GET /admin/usage: the reports, their columns and parameters."""
    data = [
        {
            "name": spec.name,
            "summary": spec.summary,
            "columns": list(spec.columns),
            "parameters": sorted(spec.parameters),
        }
        for spec in REPORTS.values()
    ]
    return {"object": "list", "data": data}


async def usage_report(request: Request, services: Services) -> Any:
    """GET /admin/usage/{report}?since=&until=&tenant=&by=&limit=&format=json|csv."""
    params = dict(request.query_params)
    fmt = params.pop("format", "json")
    if fmt not in FORMATS:
        raise InvalidRequest(f"format must be one of {list(FORMATS)}.", param="format")
    name = request.path_params["report"]
    rows = await run_report(services.engine, name, parse_filters(params))
    if fmt == "csv":
        return PlainTextResponse(rows_to_csv(rows, REPORTS[name].columns), media_type="text/csv")
    return {"object": "list", "report": name, "data": rows}
