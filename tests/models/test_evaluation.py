"""Metrics of evaluation on small cases worked out by hand."""

from __future__ import annotations

import math

import pytest

from models import evaluation
from models.evaluation import DAY

LABELS = {
    "config": {"start": "2026-01-01T00:00:00Z", "days": 100},
    "people": [
        {"subject": "a", "episode": {"onset_day": 10, "peak_day": 20, "crisis_day": 20, "end_day": 40, "peak": 1.0}},
        {"subject": "b", "episode": {"onset_day": 10, "peak_day": 20, "crisis_day": 20, "end_day": 40, "peak": 1.0}},
        {"subject": "c", "episode": {"onset_day": 50, "peak_day": 60, "crisis_day": None, "end_day": 70, "peak": 0.5}},
        {"subject": "d", "episode": None},
    ],
}
START = 1767225600.0  # 2026-01-01T00:00:00Z


def at(day):
    return START + day * DAY


def test_auroc_and_auprc_by_hand():
    assert evaluation.auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert evaluation.auroc([0, 1], [0.5, 0.5]) == 0.5
    assert evaluation.auprc([1, 0, 1], [0.9, 0.8, 0.7]) == pytest.approx((1 + 2 / 3) / 2)
    assert math.isnan(evaluation.auroc([1, 1], [0.2, 0.3]))


def test_episode_metrics_by_hand():
    alerts = [("a", at(15), "watch"), ("b", at(19), "urgent"), ("c", at(55), "watch"), ("d", at(30), "watch"),
              ("a", at(80), "watch")]
    counts = {"a": [at(d) for d in range(0, 100)], "b": [at(d) for d in range(0, 100)]}
    m = evaluation.episode_metrics(alerts, LABELS, event_counts=counts)
    assert (m["crisis_episodes"], m["crisis_alerted_early"]) == (2, 1)  # a: 5 days early; b: 1 day
    assert m["episodes_alerted"] == 3
    assert m["lead_days_before_crisis"]["median"] == 3.0
    assert m["false_alerts"] == 2  # d at all, a after its episode ended
    assert m["false_alerts_per_100_person_days"] == pytest.approx(100 * 2 / 400)
    assert m["precision"] == pytest.approx(3 / 5)


def test_erde_rewards_early_decisions():
    labels = {**LABELS, "people": LABELS["people"][:1]}
    early = evaluation.episode_metrics([("a", at(10.1), "watch")], labels, event_counts={"a": [at(10.05)]})
    late = evaluation.episode_metrics([("a", at(19), "watch")], labels,
                                      event_counts={"a": [at(10 + i / 10) for i in range(90)]})
    assert early["erde_5"] < late["erde_5"]
    assert late["erde_5"] == pytest.approx(1 - 1 / (1 + math.exp(90 - 5)))


def test_severity_rebuilt_from_a_label():
    episode = LABELS["people"][0]["episode"]
    assert evaluation.severity_from_label(episode, 5) == 0
    assert evaluation.severity_from_label(episode, 15) == pytest.approx(0.5)
    assert evaluation.severity_from_label(episode, 30) == pytest.approx(0.5)
