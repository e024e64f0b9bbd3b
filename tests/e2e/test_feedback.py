"""POST /v1/feedback against a live gateway: an end user's verdict tied to its request."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import LiveSeawall


def feedback(seawall: LiveSeawall, key: str, **body: Any) -> httpx.Response:
    return httpx.post(
        f"{seawall.url}/v1/feedback",
        headers={"authorization": f"Bearer {key}"},
        json=body,
        timeout=10,
    )


def answered_request_id(seawall: LiveSeawall, key: str) -> str:
    client = openai.OpenAI(base_url=seawall.v1, api_key=key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Rate this answer"}]
    )
    request_id: str = raw.headers["x-request-id"]
    return request_id


def feedback_scores(seawall: LiveSeawall) -> tuple[float, float]:
    """The count and sum of seawall_feedback_score for gpt-4o-mini on sim-gpt."""
    found = {"count": 0.0, "sum": 0.0}
    text = httpx.get(f"{seawall.url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name.startswith("seawall_feedback_score_")
                and labels.get("gen_ai_request_model") == "gpt-4o-mini"
                and labels.get("seawall_deployment") == "sim-gpt"
            ):
                found[sample.name.rsplit("_", 1)[1]] = sample.value
    return found["count"], found["sum"]


def test_feedback_round_trip_and_report(live_seawall: LiveSeawall) -> None:
    key = live_seawall.key
    count_before, sum_before = feedback_scores(live_seawall)
    request_id = answered_request_id(live_seawall, key)
    # Sent at once, before the record writer flushed: it waits for the record.
    first = feedback(live_seawall, key, request_id=request_id, thumbs="up", comment="spot on")
    assert first.status_code == 200, first.text
    assert first.json() | {"created_at": 0} == {
        "object": "feedback",
        "request_id": request_id,
        "score": 1.0,
        "thumbs": "up",
        "comment": "spot on",
        "created_at": 0,
    }
    # Changing one's mind replaces the verdict.
    again = feedback(live_seawall, key, request_id=request_id, score=0.2)
    assert again.status_code == 200 and again.json()["score"] == 0.2
    # Each verdict received is a sample of the metric (the store keeps the latest only).
    count_after, sum_after = feedback_scores(live_seawall)
    assert count_after - count_before == 2
    assert abs((sum_after - sum_before) - 1.2) < 1e-9
    report = httpx.get(
        f"{live_seawall.url}/admin/usage/feedback",
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    ).json()["data"]
    row = next(r for r in report if r["model"] == "gpt-4o-mini" and r["deployment"] == "sim-gpt")
    assert row["rated"] >= 1 and 0 <= row["mean_score"] <= 1


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"thumbs": "up"}, "request_id"),
        ({"request_id": "chatcmpl-123", "thumbs": "up"}, "request_id"),
        ({"request_id": "req_1"}, "either thumbs"),
        ({"request_id": "req_1", "thumbs": "up", "score": 1}, "either thumbs"),
        ({"request_id": "req_1", "thumbs": "sideways"}, "thumbs"),
        ({"request_id": "req_1", "score": 7}, "score"),
        ({"request_id": "req_1", "score": True}, "score"),
        ({"request_id": "req_1", "thumbs": "up", "comment": "x" * 2001}, "comment"),
        ({"request_id": "req_1", "thumbs": "up", "stars": 5}, "Unknown field"),
    ],
)
def test_bad_feedback_gets_a_clear_400(
    live_seawall: LiveSeawall, body: dict[str, Any], mentions: str
) -> None:
    answer = feedback(live_seawall, live_seawall.key, **body)
    assert answer.status_code == 400
    assert mentions in answer.json()["error"]["message"]


def test_feedback_only_on_the_keys_own_tenants_requests(live_seawall: LiveSeawall) -> None:
    created = httpx.post(
        f"{live_seawall.url}/admin/keys",
        headers={"authorization": f"Bearer {live_seawall.key}"},
        json={"tenant": "feedback-other", "name": "other app"},
        timeout=10,
    )
    other_key = created.json()["key"]
    request_id = answered_request_id(live_seawall, live_seawall.key)
    stranger = feedback(live_seawall, other_key, request_id=request_id, thumbs="down")
    assert stranger.status_code == 404
    unknown = feedback(live_seawall, live_seawall.key, request_id="req_" + "0" * 24, thumbs="up")
    assert unknown.status_code == 404
    assert "x-request-id" in unknown.json()["error"]["message"]
    anonymous = feedback(live_seawall, "sk-wrong", request_id=request_id, thumbs="up")
    assert anonymous.status_code == 401


def test_a_key_that_may_ask_may_rate_and_only_such_a_key(live_seawall: LiveSeawall) -> None:
    def key_for(endpoints: list[str]) -> str:
        created = httpx.post(
            f"{live_seawall.url}/admin/keys",
            headers={"authorization": f"Bearer {live_seawall.key}"},
            json={"name": "scoped", "endpoints": endpoints},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        secret: str = created.json()["key"]
        return secret

    chat_only, embeddings_only = key_for(["chat.completions"]), key_for(["embeddings"])
    request_id = answered_request_id(live_seawall, chat_only)
    assert feedback(live_seawall, chat_only, request_id=request_id, thumbs="up").status_code == 200
    refused = feedback(live_seawall, embeddings_only, request_id=request_id, thumbs="up")
    assert refused.status_code == 403
