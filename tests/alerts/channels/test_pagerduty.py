"""PagerDuty Events API v2: trigger, acknowledge, resolve under one dedup_key (the alert id)."""

from __future__ import annotations

import orjson
import pytest

from alerts.channels import build
from alerts.exceptions import Rejected
from tests.alerts.conftest import alert, notice

KEY = "R0123456789ABCDEFGHIJKLMNOPQRSTU"


async def test_trigger_then_acknowledge_then_resolve_share_the_dedup_key(receiver):
    for _ in range(3):
        receiver.answer((202, {"Content-Type": "application/json"},
                         b'{"status":"success","message":"Event processed","dedup_key":"x"}'))
    channel = build("pager", {"type": "pagerduty", "url": f"{receiver.url}/v2/enqueue", "routing_key": KEY})
    for status in ("firing", "acknowledged", "resolved"):
        await channel.send(notice(alert(status=status), step=status))
    await channel.close()
    trigger, ack, resolve = (orjson.loads(r.body) for r in receiver.requests)
    assert {r.path for r in receiver.requests} == {"/v2/enqueue"}
    assert trigger["event_action"] == "trigger" and trigger["routing_key"] == KEY
    assert trigger["dedup_key"] == ack["dedup_key"] == resolve["dedup_key"] == alert()["alert_id"]
    payload = trigger["payload"]
    assert payload["severity"] == "critical" and payload["source"] == "carewatch"
    assert payload["timestamp"] == "2026-11-27T09:30:00Z" and payload["group"] == "team-north"
    assert payload["class"] == "cssrs_q5_positive"
    assert payload["custom_details"] == alert()
    assert trigger["links"] == [{"href": alert()["links"]["page"], "text": "Open in carewatch"}]
    assert ack == {"routing_key": KEY, "event_action": "acknowledge", "dedup_key": alert()["alert_id"]}
    assert resolve == {"routing_key": KEY, "event_action": "resolve", "dedup_key": alert()["alert_id"]}


async def test_urgent_maps_to_error_and_watch_to_warning(receiver):
    channel = build("pager", {"type": "pagerduty", "url": receiver.url, "routing_key": KEY})
    await channel.send(notice(alert(severity="urgent")))
    await channel.send(notice(alert(severity="watch")))
    await channel.close()
    assert [orjson.loads(r.body)["payload"]["severity"] for r in receiver.requests] == ["error", "warning"]


async def test_a_bad_event_answer_is_final(receiver):
    receiver.answer((400, {}, b'{"status":"invalid event","message":"Event object is invalid"}'))
    channel = build("pager", {"type": "pagerduty", "url": receiver.url, "routing_key": KEY})
    with pytest.raises(Rejected):
        await channel.send(notice())
    await channel.close()
