"""The replay and `carewatch evaluate`: deterministic, batch-invariant, reporting."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from models.simulator import CohortConfig, simulate
from streams.config import Settings
from streams.pipeline import Pipeline
from streams.replay import replay
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def cohort():
    c = simulate(CohortConfig(people=40, days=90, seed=404, episode_share=0.5))
    return c, [orjson.dumps(e) for e in c.events()]


def alert_set(run):
    return sorted((a.alert_id, a.severity) for a, _ in run.alerts)


def test_batches_of_any_size_raise_the_same_alerts(cohort):
    _, lines = cohort
    one = replay(lines, pipeline=Pipeline.from_settings(Settings()), batch=1)
    many = replay(lines, pipeline=Pipeline.from_settings(Settings()), batch=300)
    assert alert_set(one) == alert_set(many)
    assert one.outcomes == many.outcomes
    assert [t.risk for t in one.traces] == [t.risk for t in many.traces]


def test_a_replay_is_deterministic_and_finds_episodes(cohort):
    _, lines = cohort
    first = replay(lines, pipeline=Pipeline.from_settings(Settings()))
    second = replay(lines, pipeline=Pipeline.from_settings(Settings()))
    assert alert_set(first) == alert_set(second)
    assert {a.severity for a, _ in first.alerts} >= {"watch", "urgent", "critical"}
    assert first.outcomes["duplicate"] > 0
    assert sum(first.outcomes.values()) == len(lines)


def test_evaluate_writes_a_report_with_plots(tmp_path, cohort):
    c, lines = cohort
    events, labels = tmp_path / "events.jsonl", tmp_path / "labels.json"
    events.write_bytes(b"\n".join(lines) + b"\n")
    labels.write_bytes(orjson.dumps(c.labels()))
    done = subprocess.run([sys.executable, "-m", "streams.cli", "evaluate", "--events", str(events), "--labels",
                           str(labels), "--out", str(tmp_path / "report")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "crisis episodes alerted 3+ days early" in done.stdout
    report = (tmp_path / "report" / "report.md").read_text()
    assert "Synthetic cohort, not clinically validated" in report
    for section in ("## Fairness slices", "| lang | es |", "| device | phone |", "ERDE5", "F_latency", "## Thresholds"):
        assert section in report
    for plot in ("lead_time.png", "calibration.png", "sensitivity_burden.png"):
        assert (tmp_path / "report" / plot).read_bytes()[:4] == b"\x89PNG"
    result = orjson.loads((tmp_path / "report" / "evaluation.json").read_bytes())
    assert result["episodes"]["crisis_episodes"] > 0
    assert set(result["models"]) == {"deviation", "text-risk", "fused"}
