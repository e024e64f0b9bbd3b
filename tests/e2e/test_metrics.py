"""GET /metrics after real traffic: the values move as the requests say, labels stay bounded."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import LiveSeawall
from tests.e2e.instances import eventually, sdk, seawall_process, simulator_process

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> tuple[Samples, str]:
    """Every sample of ``/metrics`` by name and labels, and the raw text."""
    answer = httpx.get(f"{url}/metrics", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, answer.text


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name`` over the samples carrying ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def test_traffic_moves_the_genai_and_seawall_metrics(live_seawall: LiveSeawall) -> None:
    before, _ = scrape(live_seawall.url)
    client = openai.OpenAI(base_url=live_seawall.v1, api_key=live_seawall.key, max_retries=0)
    for _ in range(3):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "metrics please"}]
        )
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "a stream"}], stream=True
    )
    for _ in stream:
        pass
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="no-such-model-7f3a", messages=[{"role": "user", "content": "x"}]
        )
    chat = {"gen_ai_request_model": "gpt-4o-mini", "gen_ai_operation_name": "chat"}

    def moved() -> bool:
        after, _ = scrape(live_seawall.url)
        done = total(after, "seawall_requests_total", http_status_code="200", **chat)
        return done - total(before, "seawall_requests_total", http_status_code="200", **chat) >= 4

    assert eventually(moved)
    after, text = scrape(live_seawall.url)

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert delta("gen_ai_client_operation_duration_seconds_count", **chat) >= 4
    assert delta("gen_ai_client_token_usage_sum", gen_ai_token_type="input", **chat) > 0
    assert delta("gen_ai_client_token_usage_sum", gen_ai_token_type="output", **chat) > 0
    assert delta("gen_ai_server_time_to_first_token_seconds_count", **chat) >= 1
    assert delta("gen_ai_server_time_per_output_token_seconds_count", **chat) >= 1
    assert delta("gen_ai_server_time_per_output_token_seconds_sum", **chat) > 0
    assert delta("seawall_cost_usd_total", gen_ai_request_model="gpt-4o-mini") > 0
    # The misspelt model is counted, but its name never becomes a label.
    assert (
        delta("seawall_requests_total", gen_ai_request_model="unknown", http_status_code="404") >= 1
    )
    assert "no-such-model-7f3a" not in text
    assert "req_" not in text and live_seawall.key not in text


def test_a_scrape_of_any_worker_counts_every_worker(tmp_path: Path) -> None:
    with simulator_process(tmp_path / "sim.log") as simulator:
        config = f"""
server: {{workers: 2}}
deployments:
  sim: {{provider: openai, model: gpt-4o-mini, api_base: "{simulator.url}/v1"}}
models:
  gpt-4o-mini: [sim]
"""
        with seawall_process(tmp_path / "s", config) as seawall:
            client = sdk(seawall)
            for _ in range(20):
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "count me"}]
                )

            def counted() -> float:
                samples, _ = scrape(seawall.url)
                return total(samples, "seawall_requests_total", gen_ai_request_model="gpt-4o-mini")

            assert eventually(lambda: counted() == 20)
            # Scrapes land on either worker; each reports the whole server.
            assert [counted() for _ in range(6)] == [20.0] * 6
