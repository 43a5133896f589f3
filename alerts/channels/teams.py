"""Microsoft Teams through a Workflows webhook: a message with one Adaptive Card attachment.

The Workflows "post to a channel when a webhook request is received"
template takes `{"type": "message", "attachments": [{"contentType":
"application/vnd.microsoft.card.adaptive", "content": <card>}]}` and
answers 202.
"""

from __future__ import annotations

from .http import JsonChannel, UrlConfig
from .summary import headline, lines, page, title

__all__ = ["Config", "TeamsChannel", "payload"]

TYPE = "teams"
_COLOR = {"critical": "Attention", "urgent": "Warning", "watch": "Accent"}


class Config(UrlConfig):
    pass


def card(notice) -> dict:
    body: list[dict] = [{"type": "TextBlock", "text": title(notice.alerts, notice.kind), "weight": "Bolder",
                         "size": "Medium", "wrap": True}]
    actions = []
    for alert in notice.alerts:
        body.append({"type": "TextBlock", "text": headline(alert), "wrap": True,
                     "color": _COLOR.get(alert["severity"], "Default"), "weight": "Bolder"})
        body.append({"type": "FactSet", "facts": [{"title": label, "value": value} for label, value in lines(alert)
                                                 if label != "Open in carewatch"]})
        if alert["status"] != "resolved":
            actions.append({"type": "Action.OpenUrl", "title": f"Open {alert['subject']} in carewatch",
                            "url": page(alert)})
    return {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": "1.4", "body": body, "actions": actions}


def payload(notice) -> dict:
    return {"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card(notice)}]}


class TeamsChannel(JsonChannel):
    def body(self, notice) -> dict:
        return payload(notice)


def build(name: str, config: Config) -> TeamsChannel:
    return TeamsChannel(name=name, config=config)
