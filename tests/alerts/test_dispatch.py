"""The dispatcher's decisions under a controllable clock: routes, escalation, acks, silences, caps, digests."""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timezone

import orjson
import pytest

from alerts.ack import Principal, Tokens
from alerts.config import AlertingConfig
from alerts.dispatch import Book, Dispatcher
from alerts.silences import Silence, from_config, from_request
from tests.alerts.conftest import alert

NORTH = hashlib.sha256(b"north-token").hexdigest()
ALICE = hashlib.sha256(b"alice-token").hexdigest()
SOUTH = hashlib.sha256(b"south-token").hexdigest()
HOOK = {"type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "whsec_dGVzdA=="}


def config(**overrides) -> AlertingConfig:
    base = {
        "care_teams": {
            "team-north": {"tokens_sha256": [NORTH], "members": {"alice": {"token_sha256": ALICE}}, "subjects": ["p-*"]},
            "team-south": {"tokens_sha256": [SOUTH], "subjects": ["s-*"]},
        },
        "channels": {"hook": HOOK, "slack": {"type": "slack", "url": "http://127.0.0.1:9/s"},
                     "pager": {"type": "pagerduty", "routing_key": "k", "url": "http://127.0.0.1:9/p"},
                     "mail": {"type": "email", "host": "127.0.0.1", "sender": "c@x.org", "to": ["o@x.org"]}},
        "routes": [{"match": {"severity": "critical"}, "channels": ["pager"], "continue": True, "fallback": "mail"},
                   {"match": {"care_team": "team-north"}, "channels": ["hook", "slack"]},
                   {"match": {}, "channels": ["mail"]}],
    }
    return AlertingConfig.model_validate(base | overrides)


def dispatcher(cfg: AlertingConfig | None = None, silences=()) -> Dispatcher:
    cfg = cfg or config()
    per_alert = {name: c.type in ("webhook", "pagerduty") for name, c in cfg.channels.items()}
    return Dispatcher(config=cfg, per_alert=per_alert, silences=silences)


def sends(effects):
    return sorted((s.channel, s.notice.delivery_id, s.notice.kind) for s in effects.sends)


AID = alert()["alert_id"]
MODEL = [{"code": "risk_rising", "detail": "model risk above the urgent threshold"}]


def test_routes_continue_and_first_match_wins_and_critical_escalates_every_5_minutes():
    d, book = dispatcher(), Book()
    effects = d.on_alert(book, alert(), now=1000)
    assert sends(effects) == [("hook", f"{AID}.fire", "alert"), ("pager", f"{AID}.fire", "alert"),
                              ("slack", f"{AID}.fire", "alert")]
    assert effects.audit[0]["routes"] == [0, 1] and effects.audit[0]["escalate_at"] == 1300
    assert d.on_tick(book, now=1299).sends == []
    first = d.on_tick(book, now=1300)
    assert sends(first) == [("hook", f"{AID}.esc1", "reminder"), ("pager", f"{AID}.esc1", "reminder"),
                            ("slack", f"{AID}.esc1", "reminder")]
    assert book.cases[AID]["due"] == 1600
    assert [s.notice.delivery_id for s in d.on_tick(book, now=1600).sends][0] == f"{AID}.esc2"


def test_an_ack_stops_escalation_and_tells_the_channels_that_got_it():
    d, book = dispatcher(), Book()
    d.on_alert(book, alert(), now=0)
    for channel in ("hook", "pager", "slack"):
        d.on_delivered(book, AID, f"{AID}.fire>{channel}", channel=channel)
    code, effects = d.on_action(book, AID, "ack", Principal("team-north", "alice"), now=60)
    assert code == 200
    assert sends(effects) == [("hook", f"{AID}.acknowledged", "update"), ("pager", f"{AID}.acknowledged", "update"),
                              ("slack", f"{AID}.acknowledged", "update")]
    assert all(s.notice.alerts[0]["status"] == "acknowledged" for s in effects.sends)
    assert effects.audit[0]["by"] == "team-north/alice"
    assert d.on_tick(book, now=10_000).sends == []
    again, nothing = d.on_action(book, AID, "ack", Principal("team-north"), now=61)
    assert again == 200 and nothing.sends == [] and nothing.audit[0]["status_to"] == "acknowledged"
    code, effects = d.on_action(book, AID, "resolve", Principal("team-north"), now=62)
    assert code == 200 and {s.notice.kind for s in effects.sends} == {"update"}
    assert d.on_action(book, AID, "ack", Principal("team-north"), now=63)[0] == 409


def test_answers_in_the_contract_order():
    d, book = dispatcher(), Book()
    d.on_alert(book, alert(), now=0)
    tokens = Tokens(config().care_teams)
    assert d.on_action(book, AID, "ack", tokens.authenticate("Bearer wrong"), now=1)[0] == 401
    assert d.on_action(book, "al-unknown-000", "ack", tokens.authenticate("Bearer south-token"), now=1)[0] == 404
    assert d.on_action(book, AID, "ack", tokens.authenticate("Bearer south-token"), now=1)[0] == 403
    assert d.on_action(book, AID, "ack", tokens.authenticate("Bearer alice-token"), now=1)[0] == 200


def test_open_cases_outlive_a_config_without_their_channels_and_policy():
    before = config(escalations={"pages": {"steps": [{"wait": "1m"}]}},
                    routes=[{"match": {}, "channels": ["pager"], "escalation": "pages", "fallback": "mail"}])
    book = Book()
    dispatcher(before).on_alert(book, alert(), now=0)
    # "pager" renamed "pagerduty-north", the "pages" policy removed; the case was written before
    channels = {"pagerduty-north": {"type": "pagerduty", "routing_key": "k", "url": "http://127.0.0.1:9/p"},
                "hook": HOOK}
    after = dispatcher(config(channels=channels, routes=[{"match": {}, "channels": ["pagerduty-north"]}]))
    reminder = after.on_tick(book, now=60)
    assert sends(reminder) == [("pagerduty-north", f"{AID}.esc1", "reminder")]
    assert book.cases[AID]["due"] == 60 + 300  # the critical default: told again until someone takes it
    code, taken = after.on_action(book, AID, "ack", Principal("team-north"), now=61)
    assert code == 200 and sends(taken) == [("pagerduty-north", f"{AID}.acknowledged", "update")]


def test_tokens_are_checked_against_hashes_and_say_who():
    tokens = Tokens(config().care_teams)
    assert tokens.authenticate("Bearer alice-token") == Principal("team-north", "alice")
    assert tokens.authenticate("Bearer north-token").who == "team-north"
    assert tokens.authenticate("Basic north-token") is None
    assert tokens.authenticate(None) is None and tokens.authenticate("Bearer ") is None


def test_any_team_may_take_an_unassigned_alert():
    d, book = dispatcher(), Book()
    d.on_alert(book, alert(care_team="unassigned", subject="x-1"), now=0)
    assert d.on_action(book, AID, "ack", Principal("team-south"), now=1)[0] == 200


def test_a_silence_mutes_model_alerts_but_never_a_safety_alert():
    cfg = config(silences=[{"care_team": "team-north", "until": "2030-01-01T00:00:00Z", "comment": "ward closed"}])
    d = dispatcher(cfg, silences=from_config(cfg.silences))
    now = datetime(2026, 11, 27, tzinfo=timezone.utc).timestamp()
    book = Book()
    model = d.on_alert(book, alert(alert_id="al-model-0001", severity="urgent", reasons=MODEL), now=now)
    assert model.sends == [] and model.audit[0]["outcome"] == "silenced"
    assert book.cases["al-model-0001"]["due"] is None
    safety = d.on_alert(book, alert(), now=now)
    assert len(safety.sends) == 3
    later = d.on_alert(Book(), alert(alert_id="al-model-0002", severity="urgent", reasons=MODEL),
                       now=datetime(2030, 1, 2, tzinfo=timezone.utc).timestamp())
    assert later.sends  # expired


def test_the_repeat_cap_stops_model_alerts_per_person_but_not_safety_alerts():
    cfg = config(alerting={"repeat_cap": 2, "repeat_window": "24h"})
    d, book = dispatcher(cfg), Book()
    outcomes = [d.on_alert(book, alert(alert_id=f"al-model-{i:04d}", severity="urgent", reasons=MODEL),
                           now=i * 60).audit[0]["outcome"] for i in range(3)]
    assert outcomes == ["notified", "notified", "capped"]
    assert d.on_alert(book, alert(), now=200).audit[0]["outcome"] == "notified"
    assert d.on_alert(book, alert(alert_id="al-model-0009", severity="urgent", reasons=MODEL),
                      now=86_400 + 61).audit[0]["outcome"] == "notified"


def test_watch_alerts_wait_for_the_digest_on_people_channels_but_not_on_the_webhook():
    d, book = dispatcher(config(alerting={"digest_window": "10m"})), Book()
    effects = d.on_alert(book, alert(severity="watch", reasons=MODEL), now=100)
    by_channel = {s.channel: s for s in effects.sends}
    assert not by_channel["hook"].digest
    assert by_channel["slack"].digest and by_channel["slack"].after == 700
    assert book.cases[AID]["due"] is None  # watch: no escalation by default


def test_a_policy_from_config_steps_to_other_channels_then_stops():
    cfg = config(escalations={"north": {"steps": [{"wait": "2m"}, {"wait": "10m", "channels": ["mail"]}], "repeat": 0}},
                 routes=[{"match": {}, "channels": ["hook"], "escalation": "north"}])
    d, book = dispatcher(cfg), Book()
    d.on_alert(book, alert(), now=0)
    assert sends(d.on_tick(book, now=120)) == [("hook", f"{AID}.esc1", "reminder")]
    assert sends(d.on_tick(book, now=720)) == [("mail", f"{AID}.esc2", "reminder")]
    assert book.cases[AID]["due"] is None and d.on_tick(book, now=10_000).sends == []


def test_pending_notices_survive_in_the_book_until_their_outcome_comes_back():
    d, book = dispatcher(), Book()
    d.on_alert(book, alert(), now=0)
    restored = Book(cases=orjson.loads(orjson.dumps(book.cases)))  # as stored and read back
    assert sorted(s.key for s in restored.pending()) == [f"{AID}.fire>hook", f"{AID}.fire>pager", f"{AID}.fire>slack"]
    assert {s.fallback for s in restored.pending() if s.channel == "pager"} == {"mail"}
    d.on_delivered(restored, AID, f"{AID}.fire>pager", channel="mail")
    assert restored.cases[AID]["notified"] == ["mail"]
    assert len(list(restored.pending())) == 2


def test_every_decision_notes_each_case_it_changes_or_forgets():
    """Only the cases a decision notes are written again: one it changed and did not note would be lost."""
    d, book, rng = dispatcher(config(alerting={"resolved_retention": "1h"})), Book(), random.Random(7)
    ids = [f"al-{i:040x}" for i in range(12)]
    now = 0.0
    for _ in range(400):
        now += rng.choice([1, 30, 400])
        before = {i: orjson.dumps(case) for i, case in book.cases.items()}
        book.touched.clear()
        book.dropped.clear()
        roll, aid = rng.random(), rng.choice(ids)
        severity = rng.choice(["critical", "urgent", "watch"])
        if roll < 0.35:
            d.on_alert(book, alert(alert_id=aid, severity=severity), now=now)
        elif roll < 0.6:
            d.on_action(book, aid, rng.choice(["ack", "resolve"]), Principal("team-north"), now=now)
        elif roll < 0.8:
            d.on_tick(book, now=now)
        elif book.cases.get(aid, {}).get("pending"):
            d.on_delivered(book, aid, rng.choice(list(book.cases[aid]["pending"])), channel=rng.choice([None, "hook"]))
        changed = {i for i, case in book.cases.items() if before.get(i) != orjson.dumps(case)}
        assert changed <= book.touched
        assert before.keys() - book.cases.keys() <= book.dropped


def test_the_same_alert_twice_is_one_case():
    d, book = dispatcher(), Book()
    d.on_alert(book, alert(), now=0)
    assert d.on_alert(book, alert(), now=5).sends == []


def test_closed_alerts_are_forgotten_after_the_retention():
    d, book = dispatcher(config(alerting={"resolved_retention": "1d"})), Book()
    d.on_alert(book, alert(), now=0)
    d.on_action(book, AID, "resolve", Principal("team-north"), now=10)
    d.on_tick(book, now=10 + 86_400 + 1)
    assert book.cases == {}


@pytest.mark.parametrize(("yaml_routes", "message"), [
    ([{"match": {}, "channels": ["hook"], "escalation": "nope"}], "routes[0].escalation: no escalation policy named 'nope'"),
])
def test_bad_escalation_references_name_the_key(yaml_routes, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config(routes=yaml_routes)


@pytest.mark.parametrize(("body", "message"), [
    ([], "body: expected a JSON object"),
    ({"duration": "2h", "colour": "red"}, "colour: unknown field"),
    ({}, "until: give exactly one of until (RFC 3339) and duration (such as 2h)"),
    ({"duration": "soon"}, "duration: expected a duration such as 30m or 2h"),
    ({"until": "2026-12-01T09:00:00"}, "until: expected an RFC 3339 time with a zone"),
    ({"duration": "90d"}, "until: must be in the future and at most 30 days away"),
    *[({"duration": "1h", "subject": subject},
       "subject: expected a subject or a glob pattern such as p-7f* (letters, digits, _ - * ? [ ] !; at most 128)")
      for subject in ("", 7, "jane.doe@example.org", "p-" * 65)],
])
def test_a_silence_request_names_its_bad_field(body, message):
    with pytest.raises(ValueError) as caught:
        from_request(body, team="team-north", who="team-north/alice", now=1_000_000)
    assert str(caught.value) == message


def test_a_silence_from_the_api_is_scoped_to_the_token_s_team():
    silence = from_request({"duration": "2h", "subject": "p-7f*", "comment": "in hospital"}, team="team-north",
                           who="team-north/alice", now=1_000_000)
    assert (silence.care_team, silence.subject, silence.until, silence.created_by) == (
        "team-north", "p-7f*", 1_000_000 + 7200, "team-north/alice")
    assert not silence.matches(alert(care_team="team-south", subject="p-7f00"))
    assert Silence.from_dict(silence.to_dict()) == silence
