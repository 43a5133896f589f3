"""Slack incoming webhook: Block Kit, with `text` as the fallback for notifications and old clients.

Slack answers 200 `ok`; 4xx bodies such as `invalid_payload` or
`no_service` are rejections, 429 carries Retry-After.
"""

from __future__ import annotations

from .http import JsonChannel, UrlConfig
from .summary import headline, lines, page, title

__all__ = ["Config", "SlackChannel", "payload"]

TYPE = "slack"
_EMOJI = {"critical": ":rotating_light:", "urgent": ":warning:", "watch": ":eyes:"}


class Config(UrlConfig):
    pass


def payload(notice) -> dict:
    alerts = notice.alerts
    blocks: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": title(alerts, notice.kind)[:150]}}]
    for alert in alerts:
        facts = dict(lines(alert))
        blocks.append({
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"{_EMOJI.get(alert['severity'], '')} *{headline(alert)}*"},
            "fields": [{"type": "mrkdwn", "text": f"*{label}*\n{facts[label]}"}
                       for label in ("Status", "Raised at", "Risk score", "Alert id")],
        })
        if alert["status"] != "resolved":
            blocks.append({"type": "actions", "elements": [{
                "type": "button", "text": {"type": "plain_text", "text": "Open in carewatch"},
                "url": page(alert), "action_id": f"ack-{alert['alert_id']}"[:255],
            }]})
    text = "\n".join(headline(alert) for alert in alerts)
    return {"text": f"{title(alerts, notice.kind)}\n{text}", "blocks": blocks[:50]}


class SlackChannel(JsonChannel):
    def body(self, notice) -> dict:
        return payload(notice)


def build(name: str, config: Config) -> SlackChannel:
    return SlackChannel(name=name, config=config)
