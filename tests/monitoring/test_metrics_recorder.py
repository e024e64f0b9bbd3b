"""The metrics recorder's own memory stays bounded whatever model names clients invent."""

from __future__ import annotations

from seawall.monitoring.metrics import MetricsRecorder
from seawall.stores.records import RequestRecord
from tests.stores.sample_records import sample_record


class Kept:
    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    def submit(self, record: RequestRecord) -> None:
        self.records.append(record)


def test_made_up_model_names_share_one_set_of_labels_and_records_go_on() -> None:
    kept = Kept()
    recorder = MetricsRecorder(kept, ["gpt-4o-mini"])
    for i in range(500):
        recorder.submit(sample_record(public_model=f"invented-{i}", status_code=404))
    recorder.submit(sample_record(public_model="gpt-4o-mini"))
    assert len(kept.records) == 501
    assert len(recorder._children) == 2
