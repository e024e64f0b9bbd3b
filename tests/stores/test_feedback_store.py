"""Feedback kept beside its request, on SQLite and PostgreSQL, and reported per model."""

from __future__ import annotations

from seawall.control.analytics import run_report
from seawall.control.report_filters import ReportFilters
from seawall.stores.database import create_engine
from seawall.stores.feedback import Feedback, Rated, SqlFeedbackStore
from seawall.stores.sql_records import SqlRecordStore
from tests.stores.sample_records import sample_record


async def test_feedback_is_kept_once_per_request_and_reported_per_model(
    store: SqlRecordStore, migrated_url: str
) -> None:
    engine = create_engine(migrated_url)
    feedback = SqlFeedbackStore(engine, wall_clock=lambda: 1_000.0)
    rated = [sample_record(tenant_id="acme", deployment="primary") for _ in range(3)]
    other = sample_record(tenant_id="acme", public_model="claude", deployment="claude-1")
    await store.write_batch([*rated, other])
    try:
        assert await feedback.owner(rated[0].request_id) == Rated("acme", "gpt-4o-mini", "primary")
        assert await feedback.owner("req_never_recorded") is None
        await feedback.put(Feedback(rated[0].request_id, "acme", "key_1", 1.0, "up"))
        await feedback.put(Feedback(rated[1].request_id, "acme", "key_1", 1.0, "up"))
        await feedback.put(Feedback(rated[2].request_id, "acme", "key_1", 0.5, None, "meh"))
        # The user changed their mind: the second verdict replaces the first.
        await feedback.put(Feedback(rated[1].request_id, "acme", "key_1", 0.0, "down"))
        await feedback.put(Feedback(other.request_id, "acme", "key_2", 0.25))
        kept = await feedback.get(rated[1].request_id)
        assert kept == Feedback(rated[1].request_id, "acme", "key_1", 0.0, "down", None, 1_000.0)
        rows = await run_report(engine, "feedback", ReportFilters(tenant_id="acme"))
        assert rows == [
            {
                "model": "gpt-4o-mini",
                "deployment": "primary",
                "rated": 3,
                "thumbs_up": 1,
                "thumbs_down": 1,
                "mean_score": 0.5,
            },
            {
                "model": "claude",
                "deployment": "claude-1",
                "rated": 1,
                "thumbs_up": 0,
                "thumbs_down": 0,
                "mean_score": 0.25,
            },
        ]
        assert await run_report(engine, "feedback", ReportFilters(tenant_id="other")) == []
    finally:
        await engine.dispose()
