"""The PromQL helpers the checks of the shipped rules and dashboards rely on."""

from __future__ import annotations

import pytest

from tests.ops.promql import as_promql, grafana_variables, metric_names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        ('up{job="seawall"} == 0', {"up"}),
        (
            'sum by (gen_ai_request_model) (rate(seawall_requests_total{code=~"5.."}[5m]))'
            " / sum by (gen_ai_request_model) (rate(seawall_requests_total[5m])) > 0.05",
            {"seawall_requests_total"},
        ),
        (
            "histogram_quantile(0.95, sum by (le, seawall_deployment)"
            " (rate(gen_ai_client_operation_duration_seconds_bucket[5m]))) > 30",
            {"gen_ai_client_operation_duration_seconds_bucket"},
        ),
        # Label values that look like metric names are not metrics.
        ('sum(x_total{seawall_cache=~"hit-exact|seawall_other"})', {"x_total"}),
        ("sum(rate(x_total[5m])) by (instance, le)", {"x_total"}),
        (
            "a_total unless a_total offset 30m and on (job, instance) (up offset 30m == 1)",
            {"a_total", "up"},
        ),
        ("a * on (instance) group_left (version) b_info", {"a", "b_info"}),
        ("deriv(mem_bytes[1h]) * 3600 > 50 * 1024 * 1e3", {"mem_bytes"}),
        ("max_over_time(state[2m:30s]) == bool 2 or vector(0)", {"state"}),
        ('label_replace(up, "dst", "$1", "instance", "(.*):.*")', {"up"}),
        ("count(x) or vector(+Inf) > NaN", {"x"}),
        ("rate(ns:requests:rate5m[5m])", {"ns:requests:rate5m"}),
    ],
)
def test_metric_names_are_the_selected_series_only(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_grafana_variables_become_all_and_intervals_become_durations() -> None:
    expr = 'sum(rate(x{m=~"$model", d=~"${deployment}"}[$__rate_interval])) / sum(y[$__range])'
    assert grafana_variables(expr) == {"model", "deployment"}
    assert as_promql(expr) == 'sum(rate(x{m=~".*", d=~".*"}[5m])) / sum(y[6h])'
