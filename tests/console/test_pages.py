"""The console's pages: escaped, ordered for triage, in a clinician's words, and no silencing of safety alerts."""

from __future__ import annotations

from alerts.ack import Principal
from console import pages, words
from console.session import Sessions

SESSION, _ = Sessions(key=b"k" * 32, ttl=60).issue(Principal("team-north", "alice"), now=0)


def case(alert_id: str, severity: str, raised: float, code: str = "risk_watch", **alert) -> dict:
    return {"alert": {"alert_id": alert_id, "subject": "p-1", "severity": severity, "status": "firing",
                      "care_team": "team-north", "reasons": [{"code": code, "detail": "d"}], "risk_score": 0.5,
                      "evidence": ["e1"], "model_versions": {}} | alert,
            "raised": raised, "due": raised + 300, "muted": None}


def test_the_inbox_puts_the_most_severe_then_the_oldest_first():
    rows = pages.inbox_rows([case("a", "watch", 1), case("b", "critical", 5), case("c", "critical", 2),
                             case("d", "urgent", 0)], now=10)
    assert [rows.index(f'data-alert="{x}"') for x in "cbda"] == sorted(rows.index(f'data-alert="{x}"') for x in "abcd")


def test_reason_codes_read_as_words():
    assert words.reason("phq9_item9_positive").startswith("PHQ-9 item 9")
    assert words.reason("something_new") == "Something new"
    row = pages.inbox_rows([case("a", "urgent", 0, code="cssrs_q5_positive")], now=90)
    assert "C-SSRS: suicidal intent with a plan" in row and "cssrs_q5_positive" not in row
    assert "1 min ago" in row and "Escalates in 3 min" in row


def test_everything_shown_is_escaped():
    hostile = case("a", "watch", 0, subject="<script>alert(1)</script>")
    page = pages.alert_page(hostile, session=SESSION, csrf="t", trend=[], safety=False, now=1,
                            timeline=[{"at": 1, "action": "ack", "by": "team-north", "code": 200,
                                       "note": "<img src=x onerror=alert(1)>"}])
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_safety_alerts_offer_no_silence_and_say_why():
    safety = pages.alert_page(case("a", "critical", 0, code="cssrs_q5_positive"), session=SESSION, csrf="t",
                              trend=[], timeline=[], safety=True, now=1)
    assert "/silence" not in safety and "cannot be silenced" in safety
    model = pages.alert_page(case("b", "watch", 0), session=SESSION, csrf="t", trend=[(0, 0.1), (60, 0.4)],
                             timeline=[], safety=False, now=1)
    assert 'action="/console/alerts/b/silence"' in model and "<polyline" in model


def test_every_form_carries_the_csrf_token():
    page = pages.alert_page(case("a", "watch", 0), session=SESSION, csrf="tok-123", trend=[], timeline=[],
                            safety=False, now=1)
    assert page.count('<form method="post"') == page.count('name="csrf" value="tok-123"') == 4
