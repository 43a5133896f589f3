"""The outbox: fallback after the primary gives up, digests per team and channel, no send started twice."""

from __future__ import annotations

import asyncio
import base64

import orjson

from alerts.channels import Notice, build
from alerts.delivery import Retrier
from alerts.dispatch import Send
from alerts.outbox import Outbox
from tests.alerts.conftest import alert
from tests.receivers import HttpReceiver

SECRET = "whsec_" + base64.b64encode(b"outbox test secret").decode()


def send(channel: str, *, alert_id: str = "al-" + "1" * 40, fallback: str | None = None, after: float = 0.0,
         **fields) -> Send:
    body = alert(alert_id=alert_id, **fields)
    return Send(subject=body["subject"], channel=channel, key=f"{alert_id}.fire>{channel}", fallback=fallback,
                after=after, notice=Notice(delivery_id=f"{alert_id}.fire", alerts=(body,)))


async def run(outbox: Outbox, done: list, count: int) -> None:
    async with outbox:
        while len(done) < count:
            await asyncio.sleep(0.05)


async def test_the_fallback_takes_what_the_primary_gave_up_and_both_outcomes_are_reported():
    primary, backup = HttpReceiver(), HttpReceiver()
    primary.failing = 503
    channels = {"hook": build("hook", {"type": "webhook", "url": primary.url, "secret": SECRET, "timeout": 1}),
                "slack": build("slack", {"type": "slack", "url": backup.url})}
    done: list = []

    async def on_done(sends, used, errors):
        done.append((sends, used, errors))

    outbox = Outbox(channels=channels, on_done=on_done, retrier=Retrier(attempts=3, base=0.01, cap=0.02))
    outbox.submit(send("hook", fallback="slack"))
    outbox.submit(send("hook", fallback="slack"))  # the same key again: not a second delivery
    await asyncio.wait_for(run(outbox, done, 1), 30)
    (sends, used, errors), = done
    assert used == "slack" and list(errors) == ["hook"] and errors["hook"].status == 503
    assert len(primary.requests) == 3 and len(backup.requests) == 1
    primary.stop()
    backup.stop()


async def test_a_channel_that_raises_is_final_at_once_the_fallback_goes_and_the_outcome_is_reported(caplog):
    slack, backup = HttpReceiver(), HttpReceiver()
    channels = {"slack": build("slack", {"type": "slack", "url": slack.url}),
                "hook": build("hook", {"type": "webhook", "url": backup.url, "secret": SECRET, "timeout": 1})}
    done: list = []

    async def on_done(sends, used, errors):
        done.append((used, errors))

    broken = send("slack", fallback="hook")
    del broken.notice.alerts[0]["links"]  # the Slack message links to the alert's page: building it raises
    outbox = Outbox(channels=channels, on_done=on_done, retrier=Retrier(attempts=3, base=0.01, cap=0.02))
    outbox.submit(broken)
    await asyncio.wait_for(run(outbox, done, 1), 30)
    [(used, errors)] = done
    assert used == "hook" and str(errors["slack"]) == "slack: the channel failed (KeyError)"
    assert slack.requests == [] and len(backup.requests) == 1
    assert "channel slack failed on al-" in caplog.text
    slack.stop()
    backup.stop()


async def test_a_notice_for_a_channel_gone_from_the_config_is_given_up_and_said_so():
    done: list = []

    async def on_done(sends, used, errors):
        done.append((used, {name: str(error) for name, error in errors.items()}))

    outbox = Outbox(channels={}, on_done=on_done, retrier=Retrier())
    outbox.submit(send("pager", fallback="mail"))  # pending in a book from before the config changed
    await asyncio.wait_for(run(outbox, done, 1), 10)
    assert done == [(None, {"pager": "pager: no channel of that name in the config",
                            "mail": "mail: no channel of that name in the config"})]


async def test_watch_alerts_of_one_team_go_out_as_one_digest_when_the_window_ends():
    slack = HttpReceiver()
    channels = {"slack": build("slack", {"type": "slack", "url": slack.url})}
    done: list = []

    async def on_done(sends, used, errors):
        done.append((sorted(s.key for s in sends), used))

    now = [1000.0]
    outbox = Outbox(channels=channels, on_done=on_done, retrier=Retrier(), clock=lambda: now[0])
    for i in range(3):
        outbox.submit(send("slack", alert_id=f"al-{i:040d}", after=1100.0, severity="watch", subject=f"p-{i:04d}"))
    outbox.submit(send("slack", alert_id="al-" + "9" * 40, after=1100.0, severity="watch", care_team="team-south"))
    async with outbox:
        await asyncio.sleep(1.2)
        assert slack.requests == []  # the window is still open
        now[0] = 1100.0
        while len(done) < 2:
            await asyncio.sleep(0.05)
    titles = sorted(orjson.loads(r.body)["blocks"][0]["text"]["text"] for r in slack.requests)
    assert titles == ["carewatch watch alert: p-7f3a9c (team-south)",
                      "carewatch: 3 watch alerts for team-north"]
    assert sorted(len(keys) for keys, _ in done) == [1, 3]
    slack.stop()
