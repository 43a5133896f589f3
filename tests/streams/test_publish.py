"""The publish SDK and CLI against the real broker."""

from __future__ import annotations

import gc
import subprocess
import sys

import orjson
import pytest

from streams.publish import Publisher
from streams.topics import EVENTS
from tests.conftest import ROOT
from tests.factory import event

pytestmark = pytest.mark.kafka


def test_valid_events_are_sent_keyed_by_subject_with_the_content_type(topics):
    events = [event("wearable", subject=f"p-pub{i}", event_id=f"pub-{i}") for i in range(20)]
    with Publisher(bootstrap_servers=topics.bootstrap, topic=topics.name(EVENTS)) as publisher:
        receipts = [publisher.publish(e) for e in events[:10]]
        receipts += [publisher.publish(orjson.dumps(e).decode()) for e in events[10:]]
    assert all(r.ok for r in receipts)
    records = topics.read_all(EVENTS)
    assert sorted(orjson.loads(r.value)["id"] for r in records) == sorted(e["id"] for e in events)
    for record in records:
        assert record.key == orjson.loads(record.value)["subject"].encode()
        assert dict(record.headers)["content-type"] == b"application/cloudevents+json"
    # one subject, one partition, in order
    by_subject = {r.key: r.partition for r in records}
    assert all(by_subject[r.key] == r.partition for r in records)


def test_invalid_events_are_never_sent(topics):
    with Publisher(bootstrap_servers=topics.bootstrap, topic=topics.name(EVENTS)) as publisher:
        receipt = publisher.publish(event("text", subject="someone@example.org"))
        unencodable = publisher.publish({"time": object()})
    assert receipt.rejected and receipt.error.code == "invalid_attribute"
    assert unencodable.rejected and unencodable.error.code == "malformed_json"
    assert not receipt.ok and receipt.partition is None
    assert topics.count(EVENTS) == 0


def test_a_rejected_event_does_not_keep_the_receipts_as_cyclic_garbage(topics):
    with Publisher(bootstrap_servers=topics.bootstrap, topic=topics.name(EVENTS)) as publisher:
        gc.collect()
        gc.disable()  # no collection in between: what the receipts leave unreachable is counted below
        try:
            receipts = publisher.publish_many([b"{oops", event("text", subject="someone@example.org")])
            assert [r.error.code for r in receipts] == ["malformed_json", "invalid_attribute"]
            assert receipts[1].error.field == "subject"
            del receipts
            assert gc.collect() == 0
        finally:
            gc.enable()


def test_the_cli_reports_bad_lines_by_number_and_exits_non_zero(topics, tmp_path):
    lines = [orjson.dumps(event("survey", event_id=f"cli-{i}", instrument="mood", score=i)).decode() for i in range(5)]
    lines.insert(2, '{"specversion": "1.0"')
    lines.insert(4, "")
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "publish", str(path), "--quiet",
         "--bootstrap-servers", topics.bootstrap],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "CAREWATCH_KAFKA__TOPIC_PREFIX": topics.prefix},
    )
    assert done.returncode == 1
    assert "line 3: record: not valid JSON (line 1, column 22) [malformed_json]" in done.stderr
    assert done.stdout.strip() == f"{path}: 5 published, 1 bad lines not sent, 0 not taken by the broker"
    assert topics.count(EVENTS) == 5
