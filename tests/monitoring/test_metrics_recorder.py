"""The metrics recorder's own memory stays bounded whatever model names clients invent."""

from __future__ import annotations

from seawall.monitoring.metrics import MetricsRecorder
from seawall.pipeline.context import Identity, RequestContext
from tests.stores.sample_records import sample_record


def test_made_up_model_names_share_one_set_of_labels() -> None:
    recorder = MetricsRecorder(["gpt-4o-mini"])
    ctx = RequestContext("req_1", "openai", "chat", b"", Identity())
    for i in range(500):
        recorder.finished(ctx, sample_record(public_model=f"invented-{i}", status_code=404), None)
    recorder.finished(ctx, sample_record(public_model="gpt-4o-mini"), None)
    assert len(recorder._children) == 2
    assert len(recorder._by_input) == 2
