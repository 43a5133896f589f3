"""One code path: the live worker on the real broker raises exactly the alerts the offline replay does."""

from __future__ import annotations

import orjson
import pytest

from models.simulator import CohortConfig, simulate
from streams.config import Settings
from streams.pipeline import Pipeline
from streams.publish import Publisher
from streams.replay import replay
from streams.topics import ALERTS, EVENTS, RISK

pytestmark = pytest.mark.kafka


def test_live_worker_and_offline_replay_raise_the_same_alerts(topics, worker_factory):
    cohort = simulate(CohortConfig(people=30, days=75, seed=515, episode_share=0.5))
    lines = [orjson.dumps(event) for event in cohort.events()]
    offline = replay(lines, pipeline=Pipeline.from_settings(Settings()))
    expected = {(a.alert_id, a.severity) for a, _ in offline.alerts}
    assert {severity for _, severity in expected} >= {"watch", "urgent", "critical"}

    worker = worker_factory()
    with Publisher(bootstrap_servers=topics.bootstrap, topic=topics.name(EVENTS)) as publisher:
        receipts = publisher.publish_many(lines)
    assert all(r.ok for r in receipts)
    outcomes = worker.wait_outcomes(len(lines))
    assert outcomes == dict(offline.outcomes) | {k: 0 for k in ("dead_lettered", "consent_dropped")
                                                 if k not in offline.outcomes}

    live = [orjson.loads(r.value) for r in topics.read_all(ALERTS)]
    assert {(a["alert_id"], a["severity"]) for a in live} == expected
    assert len(live) == len(expected)  # no crash here, so no repeats either
    assert topics.count(RISK) == offline.outcomes["processed"]
