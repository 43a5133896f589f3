"""Safety rules (CONTRACT §2): they fire whatever any model says.

Evaluated on every relevant event before any model runs, and never muted by
grouping, cool-down, repeat caps, silences or the age of the event:

* C-SSRS screener q4, q5, or q6 with q6_within_3_months -> critical
* PHQ-9 item 9 >= 1 -> urgent
* text the crisis detector flags -> critical
"""

from __future__ import annotations

from dataclasses import dataclass

from models.crisis import CrisisDetector

from .events import SURVEY, TEXT, Event

__all__ = ["Finding", "SafetyRules"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule that fired: a reason code, its severity, and words for a clinician (never event text)."""

    code: str
    severity: str
    detail: str


class SafetyRules:
    def __init__(self, *, crisis: CrisisDetector) -> None:
        self._crisis = crisis
        self.version = f"{crisis.name}@{crisis.version}"

    def evaluate(self, event: Event) -> list[Finding]:
        data = event.data
        if event.type == SURVEY:
            instrument = data["instrument"]
            if instrument == "cssrs_screener":
                return _cssrs(data["items"])
            if instrument == "phq9" and data["items"][8] >= 1:
                return [Finding("phq9_item9_positive", "urgent", f"PHQ-9 item 9 scored {data['items'][8]} of 3")]
        elif event.type == TEXT:
            result = self._crisis.detect(data["text"], data.get("lang"))
            if result.flagged:
                return [Finding("crisis_language", "critical",
                                f"crisis language detected in a {data['channel']} entry ({', '.join(result.kinds)})")]
        return []


def _cssrs(items: dict) -> list[Finding]:
    findings = []
    if items["q4"]:
        findings.append(Finding("cssrs_q4_positive", "critical",
                                "C-SSRS screener item 4 answered yes (suicidal thoughts with some intention)"))
    if items["q5"]:
        findings.append(Finding("cssrs_q5_positive", "critical",
                                "C-SSRS screener item 5 answered yes (suicidal intent with a plan)"))
    if items["q6"] and items.get("q6_within_3_months"):
        findings.append(Finding("cssrs_q6_recent", "critical",
                                "C-SSRS screener item 6 answered yes, within the past 3 months (suicidal behaviour)"))
    return findings
