"""Microsoft Teams Workflows webhook: a message with one Adaptive Card."""

from __future__ import annotations

import orjson

from alerts.channels import build
from tests.alerts.conftest import alert, notice


async def test_one_adaptive_card_attachment_with_facts_and_an_ack_action(receiver):
    receiver.answer((202, {}, b""))
    channel = build("north-teams", {"type": "teams", "url": f"{receiver.url}/workflows/abc"})
    await channel.send(notice())
    await channel.close()
    body = orjson.loads(receiver.requests[0].body)
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts["Subject"] == "p-7f3a9c" and facts["Status"] == "firing" and facts["Care team"] == "team-north"
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open p-7f3a9c in carewatch",
                                "url": alert()["links"]["page"]}]


async def test_a_resolved_update_offers_no_ack(receiver):
    channel = build("north-teams", {"type": "teams", "url": receiver.url})
    await channel.send(notice(alert(status="resolved"), kind="update", step="resolved"))
    await channel.close()
    card = orjson.loads(receiver.requests[0].body)["attachments"][0]["content"]
    assert card["actions"] == []
    assert card["body"][0]["text"] == "carewatch critical alert resolved: p-7f3a9c (team-north)"
