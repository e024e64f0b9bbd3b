"""The shipped alert rules and Grafana dashboards: valid, tested, and reading real metrics.

promtool (from ``scripts/ensure-tools``) checks the rules, runs their unit tests and
parses every dashboard query; a real ``seawall serve`` is scraped to prove every
metric the rules and dashboards read is one Seawall exposes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import MASTER_KEY
from tests.e2e.instances import eventually, sdk, seawall_process, simulator_process
from tests.ops.promql import as_promql, grafana_variables, metric_names

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
SEVERITIES = {"critical", "warning", "info"}
# Series Prometheus writes itself for every target, never in a scrape.
PROMETHEUS_MADE = {"up"}
# The series names a family of each type exposes, by suffix.
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count"),
    "info": ("_info",),
}


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run promtool; fail (not skip) where it is missing."""
    if shutil.which("promtool") is None:
        pytest.fail("promtool is not installed: run scripts/ensure-tools (make tools)")
    return subprocess.run(
        ["promtool", *map(str, args)], capture_output=True, text=True, timeout=300, check=False
    )


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule of alerts.yml."""
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboards() -> dict[str, dict[str, Any]]:
    """Every shipped dashboard by file name."""
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panels(container: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel with queries of a dashboard, those in collapsed rows too."""
    for panel in container.get("panels", []):
        if panel["type"] == "row":
            yield from panels(panel)
        else:
            yield panel


def dashboard_queries() -> list[str]:
    """Every panel query of every dashboard, as written (Grafana variables included)."""
    return [
        target["expr"]
        for dashboard in dashboards().values()
        for panel in panels(dashboard)
        for target in panel["targets"]
    ]


def variable_metrics() -> set[str]:
    """The metrics the dashboards' variables list label values of."""
    found = set()
    for dashboard in dashboards().values():
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                selector = variable["definition"].removeprefix("label_values(").rsplit(",", 1)[0]
                found |= metric_names(as_promql(selector))
    return found


def check_as_recording_rules(exprs: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``promtool check rules`` on ``exprs`` as recording rules: it parses each one."""
    rules = [{"record": f"dashboard:query_{i}", "expr": expr} for i, expr in enumerate(exprs)]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    return promtool("check", "rules", path)


def test_the_alert_rules_are_valid() -> None:
    result = promtool("check", "rules", PROMETHEUS / "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alert_rules_pass_their_unit_tests() -> None:
    result = promtool("test", "rules", PROMETHEUS / "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_where_it_fires() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())["tests"]
    fired = {
        check["alertname"]
        for test in tests
        for check in test["alert_rule_test"]
        if check.get("exp_alerts")
    }
    assert fired == {rule["alert"] for rule in alert_rules()}


def test_every_alert_has_a_severity_and_tells_the_operator_what_to_do() -> None:
    for rule in alert_rules():
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert len(rule["annotations"]["description"]) > 80, rule["alert"]


def test_the_prometheus_config_is_valid_and_loads_the_rules() -> None:
    result = promtool("check", "config", PROMETHEUS / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "alerts.yml" in result.stdout
    assert "SeawallDown" in (PROMETHEUS / "alerts.yml").read_text()
    job = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())["scrape_configs"][0]
    assert job["job_name"] == "seawall"  # SeawallDown watches up{job="seawall"}


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    queries = dashboard_queries()
    assert len(queries) > 40
    result = check_as_recording_rules([as_promql(query) for query in queries], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_parse_check_rejects_a_broken_query(tmp_path: Path) -> None:
    result = check_as_recording_rules(["sum(rate(seawall_requests_total[5m])"], tmp_path)
    assert result.returncode != 0
    assert "parse error" in result.stdout + result.stderr


def test_dashboards_query_the_chosen_data_source_with_their_own_variables() -> None:
    found = dashboards()
    assert len(found) == 4
    assert len({dashboard["uid"] for dashboard in found.values()}) == 4
    for name, dashboard in found.items():
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource", name
        assert variables["datasource"]["query"] == "prometheus", name
        assert {"model", "deployment"} <= set(variables), name
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), name
        for panel in panels(dashboard):
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, name
            assert panel["targets"], (name, panel["title"])
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, (name, panel["title"])
            for target in panel["targets"]:
                assert grafana_variables(target["expr"]) <= set(variables), target["expr"]


@pytest.fixture(scope="module")
def scraped_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every series name a live Seawall exposes after chat, stream, embeddings and feedback."""
    root = tmp_path_factory.mktemp("ops")
    with simulator_process(root / "sim.log") as simulator:
        config = f"""
deployments:
  sim: {{provider: openai, model: gpt-4o-mini, api_base: "{simulator.url}/v1"}}
  sim-embed: {{provider: openai, model: text-embedding-3-small, api_base: "{simulator.url}/v1"}}
models:
  gpt-4o-mini: [sim]
  text-embedding-3-small: [sim-embed]
"""
        with seawall_process(root / "seawall", config) as seawall:
            client = sdk(seawall)
            answer = client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "What does a gateway do?"}],
                logprobs=True,
            )
            for _ in client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "And a seawall?"}],
                stream=True,
            ):
                pass
            client.embeddings.create(model="text-embedding-3-small", input="gateway")
            rated = httpx.post(
                f"{seawall.url}/v1/feedback",
                headers={"authorization": f"Bearer {MASTER_KEY}"},
                json={"request_id": answer.headers["x-request-id"], "thumbs": "up"},
                timeout=10,
            )
            assert rated.status_code == 200, rated.text

            def scrape() -> str:
                return httpx.get(f"{seawall.url}/metrics", timeout=10).text

            # The state gauges appear once the background sampler has run.
            assert eventually(lambda: 'seawall_breaker_state{seawall_deployment="sim"}' in scrape())
            text = scrape()
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def test_every_metric_the_rules_read_is_exposed(scraped_names: set[str]) -> None:
    read = set().union(*(metric_names(rule["expr"]) for rule in alert_rules()))
    assert read - PROMETHEUS_MADE - scraped_names == set()


def test_every_metric_the_dashboards_read_is_exposed(scraped_names: set[str]) -> None:
    read = set().union(*(metric_names(as_promql(query)) for query in dashboard_queries()))
    read |= variable_metrics()
    assert read - PROMETHEUS_MADE - scraped_names == set()
