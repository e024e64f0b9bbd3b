"""Quality and reliability signals on /metrics after real traffic, with crafted upstream answers.

The simulator is scripted to refuse, to answer a golden prompt well or badly, and to
fail; the metrics, the ledger and the gauges must say so.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing

import openai
import pytest

from tests.e2e.instances import Simulator, eventually, sdk, seawall_process, simulator_process
from tests.e2e.processes import ServerProcess
from tests.e2e.test_metrics import Samples, scrape, total

REFUSAL = "I'm sorry, but I can't help with that request."
GOLDEN_GOOD = "The capital of France is Paris."
GOLDEN_BAD = "Bananas are rich in potassium and grow in tropical climates."


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Simulator, ServerProcess]]:
    root = tmp_path_factory.mktemp("quality")
    golden = root / "golden.jsonl"
    items = [
        {"model": "gpt-4o-mini", "prompt": f"Golden {n}: capital of France?", "answer": GOLDEN_GOOD}
        for n in ("one", "two")
    ]
    golden.write_text("\n".join(json.dumps(item) for item in items))
    with simulator_process(root / "sim.log") as simulator:
        # Scripted before Seawall starts: its first golden evaluation runs at start-up.
        simulator.script("Golden one", GOLDEN_GOOD)
        simulator.script("Golden two", GOLDEN_BAD)
        simulator.script("please refuse", REFUSAL)
        api = f"{simulator.url}/v1"
        config = f"""
resilience:
  max_attempts: 2
  breaker: {{min_requests: 3, failure_rate: 0.5, window_seconds: 30, open_seconds: 60}}
  admission: {{max_concurrent: 1, max_queue: 0}}
deployments:
  main: {{provider: openai, model: gpt-4o-mini, api_base: "{api}"}}
  flaky-a: {{provider: openai, model: flaky-a, api_base: "{api}"}}
  flaky-b: {{provider: openai, model: flaky-b, api_base: "{api}"}}
  fragile: {{provider: openai, model: fragile, api_base: "{api}"}}
models:
  gpt-4o-mini: [main]
  flaky: [flaky-a, flaky-b]
  fragile: [fragile]
monitoring:
  quality:
    golden_set: {golden}
    golden_live_sample: 1.0
"""
        with seawall_process(root / "s", config) as seawall:
            # The golden prompts asked at start-up are requests too (in the metrics, like
            # any other): the tests' counts begin once they are done.
            assert eventually(lambda: _scheduled(seawall) >= 2, timeout=60)
            yield simulator, seawall


def _scheduled(seawall: ServerProcess) -> float:
    """Golden answers compared by the scheduled evaluation so far."""
    samples, _ = scrape(seawall.url)
    return total(samples, "seawall_golden_similarity_count", seawall_golden_source="schedule")


def _delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


def _ask(seawall: ServerProcess, content: str, **extra: object) -> object:
    return sdk(seawall).chat.completions.create(
        model=str(extra.pop("model", "gpt-4o-mini")),
        messages=[{"role": "user", "content": content}],
        **extra,  # type: ignore[arg-type]
    )


def test_refusals_are_counted_and_kept_on_the_record(
    stack: tuple[Simulator, ServerProcess],
) -> None:
    _, seawall = stack
    before, _ = scrape(seawall.url)
    client = sdk(seawall)
    refused = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "please refuse this"}]
    )
    assert refused.parse().choices[0].message.content == REFUSAL
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "please refuse, streaming"}],
        stream=True,
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == REFUSAL
    _ask(seawall, "an ordinary question about sorrow and what I can't forget")
    chat = {"gen_ai_request_model": "gpt-4o-mini"}

    def counted() -> bool:
        after, _ = scrape(seawall.url)
        return _delta(before, after, "seawall_requests_total", **chat) >= 3

    assert eventually(counted)
    after, _ = scrape(seawall.url)
    assert _delta(before, after, "seawall_refusals_total", **chat) == 2
    # The ledger keeps it too: the request record says refused.
    request_id = refused.headers["x-request-id"]
    assert eventually(lambda: _refused(seawall, request_id) is not None)
    assert _refused(seawall, request_id) == 1


def _refused(seawall: ServerProcess, request_id: str) -> int | None:
    """The ``refused`` column of a request's record (None until it is written)."""
    database = seawall.log_path.parent / "seawall.db"
    with closing(sqlite3.connect(database)) as connection:
        row = connection.execute(
            "SELECT refused FROM requests WHERE request_id = ?", (request_id,)
        ).fetchone()
    return None if row is None else int(row[0])


def test_error_rates_are_split_by_input_type_and_logprobs_give_confidence(
    stack: tuple[Simulator, ServerProcess],
) -> None:
    _, seawall = stack
    before, _ = scrape(seawall.url)
    tool = {
        "type": "function",
        "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
    }
    _ask(seawall, "use a tool", tools=[tool])
    _ask(seawall, "answer in JSON", response_format={"type": "json_object"})
    _ask(seawall, "how sure are you?", logprobs=True)
    with pytest.raises(openai.BadRequestError):
        _ask(seawall, "bad json mode", response_format={"type": "no-such-format"})

    def counted() -> bool:
        after, _ = scrape(seawall.url)
        return _delta(before, after, "seawall_requests_by_input_total") >= 4

    assert eventually(counted)
    after, _ = scrape(seawall.url)
    by_input = "seawall_requests_by_input_total"
    assert _delta(before, after, by_input, seawall_input_type="tools", error_type="") == 1
    assert _delta(before, after, by_input, seawall_input_type="json_mode", error_type="") == 1
    assert _delta(before, after, by_input, seawall_input_type="plain", error_type="") == 1
    failed = _delta(before, after, by_input, seawall_input_type="plain") - 1
    assert failed == 1  # the malformed response_format: an error of a plain request
    confidence = "seawall_answer_confidence_count"
    assert _delta(before, after, confidence, gen_ai_request_model="gpt-4o-mini") == 1
    mean = _delta(before, after, "seawall_answer_confidence_sum")
    assert 0 < mean <= 1


def test_golden_answers_drift_shows_per_model_from_schedule_and_live_traffic(
    stack: tuple[Simulator, ServerProcess],
) -> None:
    _, seawall = stack
    golden = {"gen_ai_request_model": "gpt-4o-mini"}

    assert _scheduled(seawall) == 2  # the evaluation at start-up, nothing more yet
    samples, _ = scrape(seawall.url)
    drift = total(samples, "seawall_golden_drift", **golden)
    # One answer matches its golden answer, the other is about bananas: half drifted.
    assert 0.2 < drift < 0.6
    good_bucket = total(
        samples, "seawall_golden_similarity_bucket", seawall_golden_source="schedule", le="0.9"
    )
    assert good_bucket == 1  # only the banana answer is below 0.9

    before = samples
    _ask(seawall, "Golden one: capital of France?")

    def compared() -> bool:
        after, _ = scrape(seawall.url)
        return _delta(before, after, "seawall_golden_similarity_count",
                      seawall_golden_source="live") == 1  # fmt: skip

    assert eventually(compared, timeout=20)
    after, _ = scrape(seawall.url)
    assert (
        _delta(before, after, "seawall_golden_similarity_sum", seawall_golden_source="live") > 0.9
    )


def test_fallbacks_breakers_shedding_and_state_gauges(
    stack: tuple[Simulator, ServerProcess],
) -> None:
    simulator, seawall = stack
    before, _ = scrape(seawall.url)
    # A fallback: flaky-a fails once, flaky-b answers.
    simulator.arm(fault="unavailable", model="flaky-a", times=1)
    _ask(seawall, "fall back", model="flaky")
    # A breaker: fragile fails until its breaker opens.
    simulator.arm(fault="unavailable", model="fragile")
    for _ in range(4):
        with pytest.raises(openai.APIStatusError):
            _ask(seawall, "break", model="fragile")
    simulator.clear()
    # Shedding: one slot, no queue; a slow request holds the slot.
    simulator.arm(fault="slow", model="gpt-4o-mini", times=1, seconds=2)
    slow = threading.Thread(target=_ask, args=(seawall, "slow one"))
    slow.start()
    assert eventually(lambda: simulator.chat_requests() > 0 and _in_flight(seawall) == 1)
    with pytest.raises(openai.InternalServerError) as shed:
        _ask(seawall, "no room")
    slow.join()
    assert shed.value.status_code == 503

    def settled() -> bool:
        after, _ = scrape(seawall.url)
        return total(after, "seawall_breaker_state", seawall_deployment="fragile") == 2

    assert eventually(settled)
    after, _ = scrape(seawall.url)
    assert _delta(before, after, "seawall_fallbacks_total", gen_ai_request_model="flaky") == 1
    assert _delta(before, after, "seawall_shed_requests_total") == 1
    assert total(after, "seawall_breaker_state", seawall_deployment="main") == 0
    assert _delta(before, after, "seawall_queue_wait_seconds_count") >= 6
    assert total(after, "seawall_resident_memory_bytes") > 20 * 2**20
    assert 0 <= total(after, "seawall_event_loop_lag_seconds") < 1
    assert total(after, "seawall_ledger_spool_bytes") == 0


def _in_flight(seawall: ServerProcess) -> float:
    samples, _ = scrape(seawall.url)
    return total(samples, "seawall_requests_in_flight")
