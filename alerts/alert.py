"""The alert (CONTRACT §2): one JSON object, the same on carewatch.alerts and the webhook.

It carries only the contract's fields: never the free text of an event,
never more about a person than their pseudonymous subject.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

__all__ = ["Alert", "Reason", "SAFETY_CODES", "alert_id", "checked", "is_safety"]

SEVERITY_RANK = {"watch": 1, "urgent": 2, "critical": 3}
#: reason codes of the safety rules (streams/rules.py): never muted by silences, caps or digests
SAFETY_CODES = frozenset({"cssrs_q4_positive", "cssrs_q5_positive", "cssrs_q6_recent", "phq9_item9_positive",
                          "crisis_language"})


def is_safety(alert: dict[str, Any]) -> bool:
    """Whether a safety rule raised this alert (CONTRACT §2): then nothing may mute it."""
    return any(reason["code"] in SAFETY_CODES for reason in alert["reasons"])


_ALERT_ID = re.compile(r"[A-Za-z0-9_-]{8,128}")
_SUBJECT = re.compile(r"[A-Za-z0-9_-]{3,64}")  # CONTRACT §1
_STATUSES = ("firing", "acknowledged", "resolved")


def checked(value: Any) -> dict[str, Any]:
    """An alert read from carewatch.alerts in the CONTRACT §2 shape, with only its fields; ValueError names a field.

    A record that is not one would be taken into care and fail later, where no one sees it: when a channel
    renders it (with every other alert of the same digest), or when its escalation is due.
    Fields the contract does not name are left out rather than refused: minimum necessary, and an alert from a
    newer release is still delivered.
    """
    if not isinstance(value, dict):
        raise ValueError("alert: expected a JSON object")
    problem = _problem(value)
    if problem:
        raise ValueError(problem)
    return {name: value[name] for name in _FIELDS}


def _problem(a: dict[str, Any]) -> str | None:
    missing = next((name for name in _FIELDS if name not in a), None)
    if missing:
        return f"{missing}: missing"
    if not (_text(a["alert_id"]) and _ALERT_ID.fullmatch(a["alert_id"])):
        return "alert_id: expected 8 to 128 of A-Z a-z 0-9 _ -"
    if not (_text(a["subject"]) and _SUBJECT.fullmatch(a["subject"])):
        return "subject: expected a pseudonymous id of 3 to 64 of A-Z a-z 0-9 _ -"
    if a["severity"] not in SEVERITY_RANK:
        return f"severity: expected one of {', '.join(SEVERITY_RANK)}"
    if a["status"] not in _STATUSES:
        return f"status: expected one of {', '.join(_STATUSES)}"
    if not (_text(a["care_team"]) and a["care_team"]):
        return "care_team: expected a care team's name"
    try:
        datetime.fromisoformat(a["raised_at"].replace("Z", "+00:00")).astimezone()
    except (AttributeError, TypeError, ValueError):
        return "raised_at: expected an RFC 3339 time"
    reasons = a["reasons"]
    if not (isinstance(reasons, list) and all(
            isinstance(r, dict) and _text(r.get("code")) and _text(r.get("detail")) for r in reasons)):
        return "reasons: expected a list of {code, detail} with text"
    if isinstance(a["risk_score"], bool) or not isinstance(a["risk_score"], (int, float)):
        return "risk_score: expected a number"
    if not (isinstance(a["evidence"], list) and all(map(_text, a["evidence"]))):
        return "evidence: expected a list of event ids"
    versions = a["model_versions"]
    if not (isinstance(versions, dict) and all(map(_text, versions.values()))):
        return "model_versions: expected an object of model names to versions"
    links = a["links"]
    if not (isinstance(links, dict) and _text(links.get("ack")) and _text(links.get("page", ""))):
        return "links: expected an object with the ack URL (and the console page's)"
    return None


def _text(value: Any) -> bool:
    return isinstance(value, str)


_FIELDS = ("alert_id", "subject", "severity", "status", "care_team", "raised_at", "reasons", "risk_score", "evidence",
           "model_versions", "links")


def alert_id(subject: str, rule: str, evidence: list[str]) -> str:
    """Stable: the same subject, rule and triggering evidence give the same id."""
    digest = hashlib.sha256("\x1f".join([subject, rule, *evidence]).encode()).hexdigest()
    return f"al-{digest[:40]}"


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    alert_id: str
    subject: str
    severity: str
    care_team: str
    raised_at: float
    reasons: tuple[Reason, ...]
    risk_score: float
    evidence: tuple[str, ...]
    model_versions: dict[str, str] = field(default_factory=dict)
    status: str = "firing"
    ack_url: str = ""
    #: the alert's page in the care-team console, which every channel message links to
    page_url: str = ""

    def with_status(self, status: str) -> "Alert":
        return replace(self, status=status)

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "subject": self.subject,
            "severity": self.severity,
            "status": self.status,
            "care_team": self.care_team,
            "raised_at": datetime.fromtimestamp(self.raised_at, tz=timezone.utc).isoformat().replace("+00:00", "Z"),
            "reasons": [{"code": r.code, "detail": r.detail} for r in self.reasons],
            "risk_score": round(float(self.risk_score), 4),
            "evidence": list(self.evidence),
            "model_versions": dict(self.model_versions),
            "links": {"ack": self.ack_url, **({"page": self.page_url} if self.page_url else {})},
        }
