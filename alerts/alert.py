"""The alert (CONTRACT §2): one JSON object, the same on carewatch.alerts and the webhook.

It carries only the contract's fields: never the free text of an event,
never more about a person than their pseudonymous subject.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

__all__ = ["Alert", "Reason", "SAFETY_CODES", "alert_id", "is_safety"]

SEVERITY_RANK = {"watch": 1, "urgent": 2, "critical": 3}
#: reason codes of the safety rules (streams/rules.py): never muted by silences, caps or digests
SAFETY_CODES = frozenset({"cssrs_q4_positive", "cssrs_q5_positive", "cssrs_q6_recent", "phq9_item9_positive",
                          "crisis_language"})


def is_safety(alert: dict[str, Any]) -> bool:
    """Whether a safety rule raised this alert (CONTRACT §2): then nothing may mute it."""
    return any(reason["code"] in SAFETY_CODES for reason in alert["reasons"])


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
