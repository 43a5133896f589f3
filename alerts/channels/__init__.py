"""Channels: where a notice goes. One file per channel, all behind one `Channel` protocol.

A `Notice` is what a channel is asked to send: one or more alert objects
(CONTRACT §2, with their current `status`) and a delivery id that stays the
same on every retry of that one delivery. Channels read by people (Slack,
Teams, e-mail, console) may get several alerts at once, as a digest; the
generic webhook and PagerDuty always get one alert per request.

`build(name, config)` is the one factory: it imports every channel and
checks each channel's own keys (`channels.<name>.<key>: ...`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

__all__ = ["Channel", "Notice", "build", "check"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice:
    #: stable across retries of this delivery: the alert id plus the delivery step
    delivery_id: str
    #: CONTRACT §2 alert objects, each with its current status
    alerts: tuple[dict[str, Any], ...]
    #: "alert" (first notice), "reminder" (an escalation step), "update" (status change), "digest"
    kind: str = "alert"


class Channel(Protocol):
    name: str
    #: True when the channel takes one alert per request (webhook, PagerDuty): never a digest
    per_alert: bool

    async def send(self, notice: Notice) -> None:
        """Deliver or raise an alerts.exceptions.DeliveryError that says whether to retry."""

    async def close(self) -> None: ...


def _kinds() -> dict[str, tuple[type[BaseModel], Any]]:
    from . import console, email, pagerduty, slack, teams, webhook

    return {module.TYPE: (module.Config, module.build) for module in (console, email, pagerduty, slack, teams, webhook)}


def check(name: str, config: dict[str, Any]) -> BaseModel:
    """A channel's typed config, or ValueError naming the key: `channels.<name>.<key>: <problem>`."""
    kind = config.get("type")
    kinds = _kinds()
    if kind not in kinds:
        raise ValueError(f"channels.{name}.type: expected one of {', '.join(sorted(kinds))}")
    model, _ = kinds[kind]
    try:
        return model.model_validate({k: v for k, v in config.items() if k != "type"})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        problem = first["msg"].removeprefix("Value error, ")
        raise ValueError(f"channels.{name}{'.' + where if where else ''}: {problem}") from None


def build(name: str, config: dict[str, Any]) -> Channel:
    """The channel called `name` from its config section (already checked at load)."""
    _, factory = _kinds()[config["type"]]
    return factory(name, check(name, config))
