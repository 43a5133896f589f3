"""Safety rules through the one code path: they alert whatever the models say."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from streams.config import Settings
from streams.pipeline import Outcome, Pipeline
from streams.replay import DictStates
from tests.factory import event

T0 = datetime(2026, 3, 1, 9, tzinfo=timezone.utc)
NOW = (T0 + timedelta(minutes=5)).timestamp()
ALERT_ID = re.compile(r"^[A-Za-z0-9_-]{8,128}$")


@pytest.fixture(scope="module")
def pipeline():
    return Pipeline.from_settings(Settings(care_teams={"north": {"subjects": ["p-*"]}}))


def consented(pipeline, subject="p-rule01"):
    states = DictStates()
    pipeline.handle(orjson.dumps(event("consent", subject=subject, when=T0 - timedelta(days=1))), states=states, now=NOW)
    return states


def alerts_for(pipeline, e, states=None, now=NOW):
    states = states if states is not None else consented(pipeline, e["subject"])
    result = pipeline.handle(orjson.dumps(e), states=states, now=now)
    assert result.outcome is Outcome.PROCESSED
    return [a.to_dict() for a in result.alerts]


def cssrs(**answers):
    items = {f"q{i}": False for i in range(1, 7)} | answers
    return event("survey", subject="p-rule01", when=T0, instrument="cssrs_screener", items=items)


@pytest.mark.parametrize(("answers", "code"), [({"q4": True}, "cssrs_q4_positive"), ({"q5": True}, "cssrs_q5_positive"),
                                               ({"q6": True, "q6_within_3_months": True}, "cssrs_q6_recent")])
def test_cssrs_items_raise_critical(pipeline, answers, code):
    [alert] = alerts_for(pipeline, cssrs(**answers))
    assert (alert["severity"], alert["reasons"][0]["code"], alert["status"]) == ("critical", code, "firing")
    assert alert["care_team"] == "north"
    assert ALERT_ID.match(alert["alert_id"])
    assert alert["links"]["ack"] == f"http://127.0.0.1:6066/v1/alerts/{alert['alert_id']}/ack"


def test_q6_long_ago_and_q1_to_q3_alone_do_not(pipeline):
    assert alerts_for(pipeline, cssrs(q1=True, q2=True, q3=True, q6=True, q6_within_3_months=False)) == []


def test_phq9_item9_raises_urgent(pipeline):
    e = event("survey", subject="p-rule01", when=T0, instrument="phq9", items=[0, 0, 0, 0, 0, 0, 0, 0, 1])
    [alert] = alerts_for(pipeline, e)
    assert (alert["severity"], alert["reasons"][0]["code"]) == ("urgent", "phq9_item9_positive")


def test_crisis_language_raises_critical_and_the_alert_carries_no_text(pipeline):
    e = event("text", subject="p-rule01", when=T0, text="Honestly, I want to kill myself tonight.", lang="en")
    [alert] = alerts_for(pipeline, e)
    assert (alert["severity"], alert["reasons"][0]["code"]) == ("critical", "crisis_language")
    assert b"kill" not in orjson.dumps(alert)
    assert alert["model_versions"] == {"crisis-lexicon": "crisis-lexicon@1"}
    assert alert["evidence"] == [e["id"]]


def test_idioms_do_not_alert(pipeline):
    assert alerts_for(pipeline, event("text", subject="p-rule01", when=T0, text="I'm dying to see the film!")) == []


def test_the_same_evidence_gives_the_same_id(pipeline):
    e = cssrs(q5=True)
    first = alerts_for(pipeline, e)[0]["alert_id"]
    again = alerts_for(pipeline, e)[0]["alert_id"]  # a fresh state: as after a crash and redelivery
    other = alerts_for(pipeline, {**e, "id": "another-event"})[0]["alert_id"]
    assert first == again != other


def test_safety_rules_are_never_muted_by_cool_down(pipeline):
    states = consented(pipeline)
    ids = [alerts_for(pipeline, {**cssrs(q5=True), "id": f"c-{i}"}, states=states)[0]["alert_id"] for i in range(3)]
    assert len(set(ids)) == 3


def test_a_late_safety_event_still_alerts_and_says_how_old_it_is(pipeline):
    e = cssrs(q4=True)
    [alert] = alerts_for(pipeline, e, now=(T0 + timedelta(days=3)).timestamp())
    assert [r["code"] for r in alert["reasons"]] == ["cssrs_q4_positive", "late_event"]
    assert alert["reasons"][1]["detail"] == "the event happened 3 days before carewatch received it"


def test_rules_alert_even_when_every_model_fails(pipeline, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("model down")

    monkeypatch.setattr(pipeline._scorer, "deviation", broken)
    result = pipeline.handle(orjson.dumps(cssrs(q5=True)), states=consented(pipeline), now=NOW)
    assert result.outcome is Outcome.PROCESSED
    assert [a.severity for a in result.alerts] == ["critical"]
    assert result.record["scores"] == {} and result.record["risk"] is None


@pytest.mark.parametrize("broken", ["models.features.PersonFeatures.observe", "streams.pipeline.step"])
def test_rules_alert_even_when_the_features_or_detection_fail(pipeline, monkeypatch, caplog, broken):
    def bug(*args, **kwargs):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(broken, bug)
    states = consented(pipeline)
    survey = event("survey", subject="p-rule01", when=T0, items=[3, 3, 3, 3, 3, 3, 3, 3, 2])
    results = pipeline.handle_batch([(orjson.dumps(cssrs(q5=True)), None), (orjson.dumps(survey), None)],
                                    states=states, now=NOW)
    assert [r.outcome for r in results] == [Outcome.PROCESSED] * 2
    assert [[a.reasons[0].code for a in r.alerts] for r in results] == [["cssrs_q5_positive"], ["phq9_item9_positive"]]
    assert all(r.record["risk"] is None for r in results)
    assert "ZeroDivisionError" in caplog.text


def test_unowned_subjects_go_to_unassigned():
    pipeline = Pipeline.from_settings(Settings())
    e = {**cssrs(q5=True), "subject": "x-nobody"}
    assert alerts_for(pipeline, e)[0]["care_team"] == "unassigned"
