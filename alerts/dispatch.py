"""The dispatcher: an alert's life in care, as pure decisions over one person's book.

Every input (a new alert, a human action, the clock, a delivery's outcome)
is a method that changes the person's `Book` and returns `Effects`: notices
to send and entries for the audit trail. Nothing here does I/O or reads the
clock, so the same decisions run in the worker (streams/agents/alerting.py)
and under a test's clock.

A notice waiting to be delivered is `pending` in the book until its outcome
comes back, so a worker that dies mid-delivery sends it again after a
restart, under the same delivery id (at least once). Safety alerts are never
muted: not by silences, not by the repeat cap, not by digests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .ack import NOTE_CHARS, Principal, answer, apply
from .alert import is_safety
from .channels import Notice
from .config import AlertingConfig
from .escalation import default_policy, next_step
from .routing import matching_routes
from .silences import Silence, silencing

__all__ = ["Book", "Dispatcher", "Effects", "Send"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Send:
    """Deliver `notice` on `channel` (then on `fallback` if that fails); a digest waits until `after`."""

    subject: str
    channel: str
    notice: Notice
    key: str
    fallback: str | None = None
    after: float = 0.0

    @property
    def digest(self) -> bool:
        return self.after > 0


@dataclass(slots=True)
class Effects:
    sends: list[Send] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Book:
    """One person's alerts in care, and when their last non-safety notices went out (for the repeat cap).

    Each decision notes the cases it changed (`touched`) and forgot (`dropped`): only those are written again.
    """

    cases: dict[str, dict[str, Any]] = field(default_factory=dict)
    notices: list[float] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)
    dropped: set[str] = field(default_factory=set)

    def next_due(self) -> float | None:
        dues = [case["due"] for case in self.cases.values() if case["due"] is not None]
        return min(dues) if dues else None

    def pending(self) -> Iterable[Send]:
        """Notices whose outcome has not come back: to send again after a restart."""
        for case in self.cases.values():
            for key, item in case["pending"].items():
                yield _send(case, key, item)


def _send(case: Mapping[str, Any], key: str, item: Mapping[str, Any]) -> Send:
    alert = dict(case["alert"])
    alert["status"] = item.get("status", alert["status"])
    return Send(subject=alert["subject"], channel=item["channel"], key=key, fallback=item.get("fallback"),
                after=item.get("after", 0.0),
                notice=Notice(delivery_id=item["delivery_id"], alerts=(alert,), kind=item["kind"]))


class Dispatcher:
    def __init__(self, *, config: AlertingConfig, per_alert: Mapping[str, bool],
                 silences: Iterable[Silence] = ()) -> None:
        self.config = config
        self.settings = config.alerting
        self.per_alert = per_alert
        self.silences = list(silences)

    # -- inputs ---------------------------------------------------------------------------------

    def on_alert(self, book: Book, alert: dict[str, Any], *, now: float) -> Effects:
        effects = Effects()
        identifier = alert["alert_id"]
        if identifier in book.cases:  # the same alert again (at-least-once upstream): already in care
            return effects
        routes = matching_routes(alert, self.config.routes)
        channels = list(dict.fromkeys(name for route in routes for name in route.channels))
        case = {
            "alert": alert, "channels": channels, "raised": now, "due": None, "escalations": 0, "muted": None,
            "fallbacks": {name: route.fallback for route in routes for name in route.channels if route.fallback},
            "policy": next((route.escalation for route in routes if route.escalation), None),
            "notified": [], "pending": {}, "acted": None,
        }
        book.cases[identifier] = case
        book.touched.add(identifier)
        decision = {"action": "route", "routes": [self.config.routes.index(r) for r in routes], "channels": channels}
        silence = silencing(alert, self.silences, now=now)
        if silence is not None:
            case["muted"] = f"silence {silence.id}"
            effects.audit.append(self._audit(alert, now, **decision, outcome="silenced", silence=silence.id,
                                             until=silence.until))
            return effects
        if not is_safety(alert):
            book.notices = [t for t in book.notices if t > now - self.settings.repeat_window]
            if len(book.notices) >= self.settings.repeat_cap:
                case["muted"] = "repeat cap"
                effects.audit.append(self._audit(alert, now, **decision, outcome="capped",
                                                 cap=self.settings.repeat_cap))
                return effects
            book.notices.append(now)
        delivery_id = f"{identifier}.fire"
        for name in channels:
            digest = alert["severity"] == "watch" and not self.per_alert[name]
            self._pend(case, effects, name, delivery_id, "digest" if digest else "alert",
                       after=now + self.settings.digest_window if digest else 0.0)
        step = next_step(self._policy(case), done=0, route_channels=channels)
        case["due"] = now + step.wait if step else None
        effects.audit.append(self._audit(alert, now, **decision, outcome="notified", escalate_at=case["due"]))
        return effects

    def on_action(self, book: Book, alert_id: str, action: str, principal: Principal | None, *,
                  now: float, note: str | None = None) -> tuple[int, Effects]:
        effects = Effects()
        case = book.cases.get(alert_id)
        code = answer(case, principal, action)
        entry = {"action": action, "alert_id": alert_id, "at": now, "by": principal.who if principal else None,
                 "code": code}
        if note:
            entry["note"] = note[:NOTE_CHARS]
        if case is None or code != 200:
            effects.audit.append(entry | {"subject": case["alert"]["subject"] if case else None})
            return code, effects
        book.touched.add(alert_id)
        alert = case["alert"]
        new = apply(alert["status"], action)
        effects.audit.append(self._audit(alert, now, **entry, status_from=alert["status"],
                                         status_to=new or alert["status"]))
        if new is None:
            return code, effects
        alert["status"] = new
        case["due"] = None  # a human has it: escalation stops
        case["acted"] = now
        if case["muted"] is None:
            told = dict.fromkeys([*case["notified"], *(i["channel"] for i in case["pending"].values())])
            for name in self._reachable(case, told) if told else ():
                self._pend(case, effects, name, f"{alert_id}.{new}", "update", status=new)
        return code, effects

    def on_tick(self, book: Book, *, now: float) -> Effects:
        """Escalate what is due; forget what was closed longer ago than `resolved_retention`."""
        effects = Effects()
        for identifier, case in list(book.cases.items()):
            if case["acted"] is not None and case["acted"] < now - self.settings.resolved_retention:
                del book.cases[identifier]
                book.dropped.add(identifier)
                continue
            if case["due"] is None or case["due"] > now or case["alert"]["status"] != "firing":
                continue
            book.touched.add(identifier)
            step = next_step(self._policy(case), done=case["escalations"], route_channels=case["channels"])
            if step is None:
                case["due"] = None
                continue
            case["escalations"] = step.number
            for name in self._reachable(case, step.channels):
                self._pend(case, effects, name, f"{identifier}.esc{step.number}", "reminder")
            following = next_step(self._policy(case), done=step.number, route_channels=case["channels"])
            case["due"] = now + following.wait if following else None
            effects.audit.append(self._audit(case["alert"], now, action="escalate", step=step.number,
                                             channels=list(step.channels), escalate_at=case["due"]))
        return effects

    def on_delivered(self, book: Book, alert_id: str, key: str, *, channel: str | None) -> None:
        """A pending notice's outcome: delivered on `channel` (the fallback, maybe), or given up (None)."""
        case = book.cases.get(alert_id)
        if case is None or case["pending"].pop(key, None) is None:
            return
        book.touched.add(alert_id)
        if channel is not None and channel not in case["notified"]:
            case["notified"].append(channel)

    # -- helpers --------------------------------------------------------------------------------

    def _policy(self, case: Mapping[str, Any]):
        """The case's policy; its severity's default when it names none, or one the config no longer has (a case
        outlives a config change, and must still be told again until someone takes it)."""
        policy = self.config.escalations.get(case["policy"]) if case["policy"] is not None else None
        return policy or default_policy(case["alert"]["severity"])

    def _reachable(self, case: Mapping[str, Any], channels: Iterable[str]) -> list[str]:
        """`channels` that the config still has; when it has none of them, those of the alert's routes now, so
        that a reminder does not go to a channel that was removed or renamed, and reach no one."""
        kept = [name for name in channels if name in self.config.channels]
        return kept or list(dict.fromkeys(name for route in matching_routes(case["alert"], self.config.routes)
                                          for name in route.channels))

    def _pend(self, case: dict[str, Any], effects: Effects, channel: str, delivery_id: str, kind: str, *,
              after: float = 0.0, status: str | None = None) -> None:
        item = {"channel": channel, "delivery_id": delivery_id, "kind": kind,
                "fallback": case["fallbacks"].get(channel), "after": after, "status": status or case["alert"]["status"]}
        key = f"{delivery_id}>{channel}"
        case["pending"][key] = item
        effects.sends.append(_send(case, key, item))

    @staticmethod
    def _audit(alert: Mapping[str, Any], now: float, **fields: Any) -> dict[str, Any]:
        fields.setdefault("by", "carewatch")
        return {"at": now, "alert_id": alert["alert_id"], "subject": alert["subject"], "care_team": alert["care_team"],
                "severity": alert["severity"], **fields}
