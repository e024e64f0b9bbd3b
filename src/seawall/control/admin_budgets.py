"""Admin API: budget rules, and what each has spent in its current window."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from seawall.control.admin_api import json_body
from seawall.errors import InvalidRequest, NotFound
from seawall.services import Services
from seawall.tenancy.budgets import SCOPES, TENANT_SCOPED, BudgetRule, Charge


async def list_budgets(request: Request, services: Services) -> Any:
    """GET /admin/budgets[?scope=&subject=&tenant=]: rules with this window's spend.

    Spend of user, session and feature budgets is counted per tenant: it is shown
    when ``tenant`` is given.
    """
    params = request.query_params
    scope = params.get("scope")
    if scope is not None and scope not in SCOPES:
        raise InvalidRequest(f"scope must be one of {list(SCOPES)}.", param="scope")
    tenancy = services.tenancy
    rules = await tenancy.budget_rules.list_rules(scope=scope, subject=params.get("subject"))
    tenant = params.get("tenant")
    data = []
    for rule in rules:
        spent = None
        if rule.scope not in TENANT_SCOPED or tenant is not None:
            charge = Charge(rule, tenant if rule.scope in TENANT_SCOPED else None)
            spent = await tenancy.budget_store.spent(charge)
        data.append({**budget_json(rule), "spent_usd": spent})
    return {"object": "list", "data": data}


async def put_budget(request: Request, services: Services) -> Any:
    """POST /admin/budgets {"scope", "subject", "period", "soft_usd", "hard_usd"}.

    A rule with the same scope, subject and period is replaced (same id).
    """
    body = await json_body(request, services)
    known = {"scope", "subject", "period", "soft_usd", "hard_usd"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise InvalidRequest(f"Unknown field(s) {unknown}; expected {sorted(known)}.")
    try:
        rule = BudgetRule(
            scope=body.get("scope"),  # type: ignore[arg-type]  # validated by BudgetRule
            subject=body.get("subject"),  # type: ignore[arg-type]
            period=body.get("period", "monthly"),
            soft_usd=_usd(body, "soft_usd"),
            hard_usd=_usd(body, "hard_usd"),
        )
    except (ValueError, TypeError) as exc:
        raise InvalidRequest(str(exc)) from None
    if not isinstance(rule.subject, str):
        raise InvalidRequest("subject must be a string.", param="subject")
    stored = await services.tenancy.budget_rules.put(rule)
    await services.tenancy.budget_cache.refresh()
    return budget_json(stored)


async def delete_budget(request: Request, services: Services) -> Any:
    """DELETE /admin/budgets/{budget_id}."""
    budget_id = request.path_params["budget_id"]
    if not await services.tenancy.budget_rules.delete(budget_id):
        raise NotFound(f"No budget has the id {budget_id!r}; list them with GET /admin/budgets.")
    await services.tenancy.budget_cache.refresh()
    return {"id": budget_id, "deleted": True}


def budget_json(rule: BudgetRule) -> dict[str, Any]:
    """How a budget rule reads in the admin API and the CLI."""
    return {
        "id": rule.budget_id,
        "scope": rule.scope,
        "subject": rule.subject,
        "period": rule.period,
        "soft_usd": rule.soft_usd,
        "hard_usd": rule.hard_usd,
    }


def _usd(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"{name} must be a number of US dollars.", param=name)
    return float(value)
