"""Words for people's channels, made only of CONTRACT §2 fields: never event text."""

from __future__ import annotations

from typing import Any

__all__ = ["SEVERITY_WORDS", "headline", "lines", "page", "title"]

SEVERITY_WORDS = {
    "critical": "possible imminent risk: act now",
    "urgent": "clinician review today",
    "watch": "review at the next routine check",
}


def headline(alert: dict[str, Any]) -> str:
    """`CRITICAL p-7f3a9c (team-north): C-SSRS screener item 5 answered yes`, with the status if not firing."""
    status = "" if alert["status"] == "firing" else f" [{alert['status']}]"
    reasons = "; ".join(reason["detail"] for reason in alert["reasons"]) or "no reason given"
    return f"{alert['severity'].upper()}{status} {alert['subject']} ({alert['care_team']}): {reasons}"


def page(alert: dict[str, Any]) -> str:
    """Where a person opens the alert: its console page (the ack endpoint for alerts made before there was one)."""
    return alert["links"].get("page") or alert["links"]["ack"]


def title(alerts: tuple[dict[str, Any], ...], kind: str) -> str:
    first = alerts[0]
    if len(alerts) > 1:
        return f"carewatch: {len(alerts)} {first['severity']} alerts for {first['care_team']}"
    verb = {"update": f"alert {first['status']}", "reminder": "alert still unacknowledged"}.get(kind, "alert")
    return f"carewatch {first['severity']} {verb}: {first['subject']} ({first['care_team']})"


def lines(alert: dict[str, Any]) -> list[tuple[str, str]]:
    """The facts of one alert as (label, value) pairs, in reading order."""
    return [
        ("Severity", f"{alert['severity']} ({SEVERITY_WORDS.get(alert['severity'], '')})"),
        ("Status", alert["status"]),
        ("Subject", alert["subject"]),
        ("Care team", alert["care_team"]),
        ("Raised at", alert["raised_at"]),
        ("Reasons", "; ".join(f"{r['code']}: {r['detail']}" for r in alert["reasons"])),
        ("Risk score", f"{alert['risk_score']:.2f}"),
        ("Alert id", alert["alert_id"]),
        ("Open in carewatch", page(alert)),
    ]
