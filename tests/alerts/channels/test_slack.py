"""Slack incoming webhook: Block Kit with a text fallback, only contract fields."""

from __future__ import annotations

import orjson
import pytest

from alerts.channels import build
from alerts.exceptions import RateLimited
from tests.alerts.conftest import alert, notice


async def test_block_kit_with_a_text_fallback_and_the_ack_link(receiver):
    channel = build("north-slack", {"type": "slack", "url": f"{receiver.url}/services/T0/B0/x"})
    await channel.send(notice())
    await channel.close()
    (request,) = receiver.requests
    body = orjson.loads(request.body)
    assert set(body) == {"text", "blocks"}
    assert body["text"].startswith("carewatch critical alert: p-7f3a9c (team-north)")
    assert "C-SSRS screener item 5 answered yes" in body["text"]
    assert body["blocks"][0] == {"type": "header", "text": {"type": "plain_text",
                                                            "text": "carewatch critical alert: p-7f3a9c (team-north)"}}
    (button,) = body["blocks"][2]["elements"]
    assert button["url"] == alert()["links"]["page"]
    assert all(block["type"] in {"header", "section", "actions"} for block in body["blocks"])


async def test_a_digest_is_one_message_with_a_section_per_alert(receiver):
    watch = [alert(alert_id=f"al-{i:040d}", severity="watch", subject=f"p-{i:04d}",
                   reasons=[{"code": "risk_rising", "detail": "model risk above the watch threshold"}])
             for i in range(3)]
    channel = build("north-slack", {"type": "slack", "url": receiver.url})
    await channel.send(notice(*watch, kind="digest"))
    await channel.close()
    body = orjson.loads(receiver.requests[0].body)
    assert body["blocks"][0]["text"]["text"] == "carewatch: 3 watch alerts for team-north"
    assert [b["text"]["text"].split(" ", 2)[1] for b in body["blocks"] if b["type"] == "section"] == [
        "*WATCH", "*WATCH", "*WATCH"]
    assert all(f"p-{i:04d}" in body["text"] for i in range(3))


async def test_429_is_rate_limited_with_the_retry_after_it_gave(receiver):
    receiver.answer((429, {"Retry-After": "7"}, b"rate_limited"))
    channel = build("north-slack", {"type": "slack", "url": receiver.url})
    with pytest.raises(RateLimited) as caught:
        await channel.send(notice())
    await channel.close()
    assert caught.value.retry_after == 7 and caught.value.retriable
