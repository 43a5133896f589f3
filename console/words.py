"""What a clinician reads instead of internal codes: reasons, severities, statuses, ages and deadlines."""

from __future__ import annotations

__all__ = ["ago", "deadline", "reason", "severity", "span", "status"]

_REASONS = {
    "cssrs_q4_positive": "C-SSRS: suicidal thoughts with some intention to act",
    "cssrs_q5_positive": "C-SSRS: suicidal intent with a plan",
    "cssrs_q6_recent": "C-SSRS: suicidal behaviour within the past 3 months",
    "phq9_item9_positive": "PHQ-9 item 9: thoughts of being better off dead or of self-harm",
    "crisis_language": "Crisis language in a journal or chat entry",
    "late_event": "Reported late",
    "risk_watch": "Risk above this person's usual pattern",
    "risk_urgent": "Risk well above this person's usual pattern",
}
_SEVERITIES = {"critical": "Critical: act now", "urgent": "Urgent: review today", "watch": "Watch: next routine check"}
_STATUSES = {"firing": "Open", "acknowledged": "Acknowledged", "resolved": "Resolved"}


def reason(code: str) -> str:
    return _REASONS.get(code, code.replace("_", " ").capitalize())


def severity(name: str) -> str:
    return _SEVERITIES.get(name, name)


def status(name: str) -> str:
    return _STATUSES.get(name, name)


def span(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def ago(at: float, *, now: float) -> str:
    return f"{span(now - at)} ago"


def deadline(case: dict, *, now: float) -> str:
    """When the alert escalates if nobody takes it, in words."""
    if case["alert"]["status"] != "firing":
        return "Escalation stopped: a person has it"
    if case.get("muted"):
        return f"Not notified ({case['muted']})"
    due = case.get("due")
    if due is None:
        return "No escalation"
    if due <= now:
        return f"Escalating now (due {span(now - due)} ago)"
    return f"Escalates in {span(due - now)}"
