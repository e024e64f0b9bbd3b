"""Admin API paths to handlers, and nothing else."""

from __future__ import annotations

from starlette.routing import Route

from seawall.control import admin_api, admin_budgets, admin_cache, admin_guard, admin_usage
from seawall.control.admin_api import ServicesSource, admin_endpoint


def admin_routes(services: ServicesSource) -> list[Route]:
    """Every path of the admin API."""

    def route(path: str, handler: admin_api.AdminHandler, method: str, status: int = 200) -> Route:
        return Route(path, admin_endpoint(services, handler, status), methods=[method])

    return [
        route("/admin/tenants", admin_api.list_tenants, "GET"),
        route("/admin/tenants", admin_api.create_tenant, "POST", 201),
        route("/admin/keys", admin_api.list_keys, "GET"),
        route("/admin/keys", admin_api.create_key, "POST", 201),
        route("/admin/keys/{key_id}", admin_api.get_key, "GET"),
        route("/admin/keys/{key_id}", admin_api.revoke_key, "DELETE"),
        route("/admin/keys/{key_id}/rotate", admin_api.rotate_key, "POST", 201),
        route("/admin/budgets", admin_budgets.list_budgets, "GET"),
        route("/admin/budgets", admin_budgets.put_budget, "POST", 201),
        route("/admin/budgets/{budget_id}", admin_budgets.delete_budget, "DELETE"),
        route("/admin/usage", admin_usage.list_reports, "GET"),
        route("/admin/usage/{report}", admin_usage.usage_report, "GET"),
        route("/admin/cache", admin_cache.cache_status, "GET"),
        route("/admin/cache/invalidate", admin_cache.invalidate, "POST", 201),
        route("/admin/cache/warm", admin_cache.warm, "POST"),
        route("/admin/guard/detections", admin_guard.list_detections, "GET"),
        route("/admin/guard/reviews", admin_guard.list_reviews, "GET"),
        route("/admin/guard/reviews/{review_id}/approve", admin_guard.approve_review, "POST"),
        route("/admin/guard/reviews/{review_id}/reject", admin_guard.reject_review, "POST"),
        route("/admin/guard/strikes/{tenant}/{user:path}", admin_guard.get_strikes, "GET"),
    ]
