"""The worker process: its web endpoints, and state that outlives it."""

from __future__ import annotations

import httpx
import orjson
import pytest

from streams.topics import RISK
from tests.factory import event
from tests.processes import wait_for

pytestmark = pytest.mark.kafka


def test_health_ready_and_metrics_with_every_outcome_at_zero(worker_factory):
    worker = worker_factory()
    assert httpx.get(f"{worker.url}/healthz").json()["status"] == "ok"
    assert httpx.get(f"{worker.url}/readyz").json() == {"ready": True, "reason": "ok", "partitions": list(range(12))}
    assert worker.outcomes() == {"processed": 0, "consent_dropped": 0, "duplicate": 0, "dead_lettered": 0}
    assert worker.metrics()[("carewatch_ingest_stalled_partitions", ())] == 0
    only = worker.metrics("carewatch_ingest_events_total")
    assert only and {name for name, _ in only} == {"carewatch_ingest_events_total"}


def test_dedupe_and_consent_survive_a_restart_from_the_changelog_alone(worker_factory, topics, tmp_path):
    first = worker_factory(name="first")
    consent = event("consent", subject="p-rst01", event_id="rst-consent")
    seen = event("text", subject="p-rst01", event_id="rst-1")
    topics.send_raw([(b"p-rst01", orjson.dumps(consent)), (b"p-rst01", orjson.dumps(seen))])
    assert first.wait_outcomes(2) == {"processed": 2, "consent_dropped": 0, "duplicate": 0, "dead_lettered": 0}
    first.stop()

    # A new process with an empty local store: only the changelog topic can tell it what happened.
    second = worker_factory(name="second", data_dir=tmp_path / "empty-store")
    fresh = event("text", subject="p-rst01", event_id="rst-2")
    topics.send_raw([(b"p-rst01", orjson.dumps(seen)), (b"p-rst01", orjson.dumps(fresh))])
    assert second.wait_outcomes(2) == {"processed": 1, "consent_dropped": 0, "duplicate": 1, "dead_lettered": 0}
    ids = [orjson.loads(r.value)["event_id"] for r in topics.read_all(RISK)]
    assert sorted(ids) == ["rst-1", "rst-2", "rst-consent"]


def test_metrics_say_what_was_read_scored_and_stored_with_no_person_in_any_label(worker_factory, topics):
    worker = worker_factory()
    consent = event("consent", subject="p-met01", event_id="met-consent")
    text = event("text", subject="p-met01", event_id="met-1")
    topics.send_raw([(b"p-met01", orjson.dumps(consent)), (b"p-met01", orjson.dumps(text)), (b"p-met01", b"{")])
    worker.wait_outcomes(3)
    stored = ("carewatch_ingest_batch_seconds_count", (("step", "stored"),))  # states wait for worker.store_interval
    metrics = wait_for(lambda: (m := worker.metrics()).get(stored) == m[("carewatch_ingest_batch_events_count", ())]
                       and m, timeout=30, what="the batches' states stored")
    assert metrics[("carewatch_ingest_events_total", (("outcome", "processed"), ("type", "text")))] == 1
    assert metrics[("carewatch_ingest_events_total", (("outcome", "processed"), ("type", "consent")))] == 1
    assert metrics[("carewatch_ingest_events_total", (("outcome", "dead_lettered"), ("type", "invalid")))] == 1
    assert metrics[("carewatch_risk_assessments_total", ())] == 2
    assert sum(v for (name, labels), v in metrics.items()
               if name == "carewatch_scoring_seconds_count" and ("model", "text-risk") in labels) >= 1
    assert metrics[("carewatch_state_person_bytes_count", ())] >= 1
    assert metrics[("carewatch_ingest_event_time_lag_seconds_count", ())] == 2
    batches = metrics[("carewatch_ingest_batch_events_count", ())]
    assert batches >= 1 and metrics[("carewatch_ingest_batch_events_sum", ())] == 3
    for step in ("waited", "processed", "delivered", "stored"):  # every batch passes every step, once
        assert metrics[("carewatch_ingest_batch_seconds_count", (("step", step),))] == batches
    assert metrics[("carewatch_ingest_batch_seconds_sum", (("step", "delivered"),))] > 0
    assert not any("p-met01" in str(labels) for _, labels in metrics)
