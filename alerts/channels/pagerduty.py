"""PagerDuty Events API v2: trigger, acknowledge and resolve, one alert per request.

`dedup_key` is the alert id, so PagerDuty folds repeats and retries into one
incident, and an acknowledge or resolve in carewatch reaches the same
incident. PagerDuty answers 202; 400 is a bad event, 429 a rate limit.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .http import JsonChannel
from .summary import headline, page

__all__ = ["Config", "PagerDutyChannel", "event"]

TYPE = "pagerduty"
EVENTS_API = "https://events.pagerduty.com/v2/enqueue"
_ACTION = {"firing": "trigger", "acknowledged": "acknowledge", "resolved": "resolve"}
_SEVERITY = {"critical": "critical", "urgent": "error", "watch": "warning"}


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str = Field(default=EVENTS_API, pattern=r"^https?://")
    #: the integration key of a PagerDuty service (or routing_key_env: the variable that holds it)
    routing_key: str | None = None
    routing_key_env: str | None = None
    timeout: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _one_source(self) -> "Config":
        if (self.routing_key is None) == (self.routing_key_env is None):
            raise ValueError("give exactly one of routing_key and routing_key_env")
        if self.routing_key_env is not None and not os.environ.get(self.routing_key_env):
            raise ValueError(f"routing_key_env: environment variable {self.routing_key_env} is not set")
        return self

    def key(self) -> str:
        return self.routing_key or os.environ[self.routing_key_env]


def event(alert: dict, routing_key: str) -> dict:
    action = _ACTION[alert["status"]]
    body: dict = {"routing_key": routing_key, "event_action": action, "dedup_key": alert["alert_id"]}
    if action == "trigger":
        body["payload"] = {
            "summary": headline(alert)[:1024],
            "source": "carewatch",
            "severity": _SEVERITY[alert["severity"]],
            "timestamp": alert["raised_at"],
            "component": "carewatch",
            "group": alert["care_team"],
            "class": alert["reasons"][0]["code"] if alert["reasons"] else "risk",
            "custom_details": alert,
        }
        body["links"] = [{"href": page(alert), "text": "Open in carewatch"}]
    return body


class PagerDutyChannel(JsonChannel):
    per_alert = True

    def body(self, notice) -> dict:
        (alert,) = notice.alerts
        return event(alert, self.config.key())


def build(name: str, config: Config) -> PagerDutyChannel:
    return PagerDutyChannel(name=name, config=config)
