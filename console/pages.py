"""The console's pages as plain HTML: every value escaped, no event text anywhere.

What a page shows comes from the alert (CONTRACT §2 fields), the person's
book (status, deadlines, who acted), risk scores and the audit trail; none
of them carries event text. Pages link one stylesheet and one small script
(live inbox updates); they work without the script, by reloading.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from . import words
from .session import Session

__all__ = ["UNREAD", "alert_page", "audit_page", "inbox_page", "inbox_rows", "message_page", "sign_in_page"]

SEVERITY_ORDER = {"critical": 0, "urgent": 1, "watch": 2}
#: rows an inbox shows at most, in its order: a page that listed every alert held took 0.3 s of the worker's
#: loop and 1.6 MB at 5,000 alerts, at every live update
INBOX_ROWS = 200
#: in place of what is read back from the broker (risk trend, timeline, audit trail) when it does not answer
UNREAD = "Not available now: the event log does not answer (is the broker away?). Reload in a minute."
SILENCE_CHOICES = (("1h", "1 hour"), ("4h", "4 hours"), ("24h", "1 day"), ("3d", "3 days"), ("7d", "7 days"))


def _time(at: float | None) -> str:
    if at is None:
        return ""
    return datetime.fromtimestamp(at, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _layout(title: str, body: str, *, session: Session | None = None, csrf: str | None = None,
            live: bool = False) -> str:
    nav = ""
    if session is not None:
        who = session.member or "team token"
        nav = (f'<nav aria-label="Main"><a href="/console/inbox">Inbox</a> <a href="/console/audit">Audit</a>'
               f'<span class="who">{escape(session.team)} · {escape(who)}</span>'
               f'<form method="post" action="/console/sign-out" class="inline">'
               f'<input type="hidden" name="csrf" value="{escape(csrf or "")}">'
               f'<button type="submit">Sign out</button></form></nav>')
    script = '<script src="/console/static/console.js" defer></script>' if live else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{escape(title)} · carewatch</title>'
            f'<link rel="stylesheet" href="/console/static/console.css">{script}</head>'
            f'<body><a class="skip" href="#main">Skip to content</a>'
            f'<header><span class="brand">carewatch</span>{nav}</header>'
            f'<main id="main"><h1>{escape(title)}</h1>{body}</main>'
            f'<footer>carewatch supports clinical judgement; it does not replace it. '
            f'Scores come from models trained on synthetic data and are not clinically validated.</footer>'
            f'</body></html>')


def message_page(title: str, text: str, *, session: Session | None = None, csrf: str | None = None) -> str:
    return _layout(title, f'<p>{escape(text)}</p><p><a href="/console/inbox">Back to the inbox</a></p>',
                   session=session, csrf=csrf)


def sign_in_page(*, csrf: str, next_path: str, error: str | None = None) -> str:
    problem = f'<p class="error" role="alert" id="sign-in-error">{escape(error)}</p>' if error else ""
    described = ' aria-describedby="sign-in-error"' if error else ""
    body = (f'{problem}<form method="post" action="/console/sign-in" class="card">'
            f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
            f'<input type="hidden" name="next" value="{escape(next_path)}">'
            f'<label for="token">Your personal or care-team token</label>'
            f'<input id="token" name="token" type="password" autocomplete="current-password" required{described}>'
            f'<button type="submit">Sign in</button></form>'
            f'<p class="hint">A personal token puts your name on what you do; a team token puts the team\'s.</p>')
    return _layout("Sign in", body)


def _filters_query(filters: Mapping[str, str]) -> str:
    return urlencode({k: v for k, v in filters.items() if v})


def rank(severity: str, raised: float) -> tuple[int, float]:
    """The inbox's order: most severe first, then oldest first."""
    return SEVERITY_ORDER.get(severity, 9), raised


def order(cases: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(cases, key=lambda c: rank(c["alert"]["severity"], c["raised"]))


def inbox_rows(cases: Sequence[dict[str, Any]], *, now: float, matching: int | None = None) -> str:
    """The rows of `cases`, of `matching` alerts in all (more than are shown: a row says so)."""
    if not cases:
        return '<tr><td colspan="6">No alerts match.</td></tr>'
    rows = []
    if matching is not None and matching > len(cases):
        rows.append(f'<tr class="more"><td colspan="6">The {len(cases):,} most severe and oldest of {matching:,} '
                    f'alerts are shown: filter by severity or status to see others.</td></tr>')
    for case in order(cases):
        alert = case["alert"]
        link = f'/console/alerts/{quote(alert["alert_id"])}'
        reasons = "; ".join(escape(words.reason(r["code"])) for r in alert["reasons"])
        rows.append(
            f'<tr class="sev-{escape(alert["severity"])}" data-alert="{escape(alert["alert_id"])}">'
            f'<td><span class="badge {escape(alert["severity"])}">{escape(alert["severity"].capitalize())}</span></td>'
            f'<td><a href="{link}">{escape(alert["subject"])}</a></td>'
            f'<td>{reasons}</td>'
            f'<td>{escape(words.ago(case["raised"], now=now))}</td>'
            f'<td>{escape(words.deadline(case, now=now))}</td>'
            f'<td>{escape(words.status(alert["status"]))}</td></tr>')
    return "".join(rows)


def inbox_page(cases: Sequence[dict[str, Any]], *, session: Session, csrf: str, filters: Mapping[str, str],
               now: float, matching: int | None = None) -> str:
    def options(name: str, choices: Sequence[tuple[str, str]]) -> str:
        return "".join(f'<option value="{v}"{" selected" if filters.get(name, "") == v else ""}>{label}</option>'
                       for v, label in choices)

    form = (f'<form method="get" action="/console/inbox" class="filters">'
            f'<label for="severity">Severity</label><select id="severity" name="severity">'
            f'{options("severity", [("", "All"), ("critical", "Critical"), ("urgent", "Urgent"), ("watch", "Watch")])}'
            f'</select><label for="status">Status</label><select id="status" name="status">'
            f'{options("status", [("", "Open and acknowledged"), ("firing", "Open"), ("acknowledged", "Acknowledged"), ("resolved", "Resolved")])}'
            f'</select><button type="submit">Filter</button></form>')
    table = (f'<table id="inbox" data-rows="/console/inbox/rows?{escape(_filters_query(filters))}">'
             f'<caption>Alerts of {escape(session.team)}, most severe and oldest first'
             f'<span id="live" class="live" aria-live="polite"></span></caption>'
             f'<thead><tr><th scope="col">Severity</th><th scope="col">Person</th><th scope="col">Why</th>'
             f'<th scope="col">Raised</th><th scope="col">Deadline</th><th scope="col">Status</th></tr></thead>'
             f'<tbody id="inbox-rows">{inbox_rows(cases, now=now, matching=matching)}</tbody></table>')
    return _layout("Inbox", form + table, session=session, csrf=csrf, live=True)


def _trend(points: Sequence[tuple[float, float]] | None) -> str:
    """An inline SVG line of risk over time (scores only), with a text summary for screen readers."""
    if points is None:
        return f'<p class="unread">{escape(UNREAD)}</p>'
    if not points:
        return '<p>No risk scores for this person in the recent record.</p>'
    width, height, pad = 320, 90, 6
    t0, t1 = points[0][0], points[-1][0]
    span = (t1 - t0) or 1.0
    xy = [(pad + (t - t0) / span * (width - 2 * pad), height - pad - r * (height - 2 * pad)) for t, r in points]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    last = points[-1][1]
    summary = (f"{len(points)} risk scores from {_time(t0)} to {_time(t1)}; latest {last:.2f}, "
               f"highest {max(r for _, r in points):.2f}")
    return (f'<figure class="trend"><svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(summary)}">'
            f'<rect x="0" y="0" width="{width}" height="{height}" class="frame"/>'
            f'<polyline points="{path}" class="line"/>'
            f'<circle cx="{xy[-1][0]:.1f}" cy="{xy[-1][1]:.1f}" r="3" class="dot"/></svg>'
            f'<figcaption>{escape(summary)} (0 at the bottom, 1 at the top)</figcaption></figure>')


def _timeline(entries: Sequence[dict[str, Any]] | None) -> str:
    if entries is None:
        return f'<p class="unread">{escape(UNREAD)}</p>'
    if not entries:
        return '<p>Nothing recorded yet.</p>'
    items = []
    for entry in entries:
        action = entry.get("action", "")
        if action == "route":
            text = {"notified": f"Sent to {', '.join(entry.get('channels', []))}",
                    "silenced": f"Not sent: silenced ({entry.get('silence', '')})",
                    "capped": "Not sent: the person's repeat cap was reached"}.get(entry.get("outcome"), action)
        elif action == "delivered":
            text = (f"Delivered by {entry.get('via')}" if entry.get("via")
                    else f"Delivery to {entry.get('channel')} failed")
        elif action == "escalate":
            text = f"Escalated (step {entry.get('step')}) to {', '.join(entry.get('channels', []))}"
        elif action in ("ack", "resolve"):
            text = f"{'Acknowledged' if action == 'ack' else 'Resolved'} by {entry.get('by')}"
            if entry.get("code") != 200:
                text = f"{action} refused ({entry.get('code')}) for {entry.get('by')}"
        elif action in ("silence", "unsilence"):
            text = f"{'Silenced' if action == 'silence' else 'Silence ended'} by {entry.get('by')}"
        else:
            text = action
        note = f'<q>{escape(str(entry["note"]))}</q>' if entry.get("note") else ""
        items.append(f'<li><time>{escape(_time(entry.get("at")))}</time> {escape(text)} {note}</li>')
    return f'<ol class="timeline">{"".join(items)}</ol>'


def alert_page(case: dict[str, Any], *, session: Session, csrf: str, trend: Sequence[tuple[float, float]] | None,
               timeline: Sequence[dict[str, Any]] | None, safety: bool, now: float, done: str | None = None) -> str:
    alert = case["alert"]
    path = f'/console/alerts/{quote(alert["alert_id"])}'
    flash = f'<p class="done" role="status">{escape(done)}</p>' if done else ""
    reasons = "".join(f'<li><strong>{escape(words.reason(r["code"]))}</strong>: {escape(r["detail"])}</li>'
                      for r in alert["reasons"])
    versions = ", ".join(f"{escape(k)} {escape(v)}" for k, v in sorted(alert.get("model_versions", {}).items()))
    facts = [
        ("Severity", f'<span class="badge {escape(alert["severity"])}">{escape(words.severity(alert["severity"]))}</span>'),
        ("Status", escape(words.status(alert["status"]))),
        ("Person", escape(alert["subject"])),
        ("Care team", escape(alert["care_team"])),
        ("Raised", f'{escape(_time(case["raised"]))} ({escape(words.ago(case["raised"], now=now))})'),
        ("Deadline", escape(words.deadline(case, now=now))),
        ("Risk score", f'{float(alert["risk_score"]):.2f}'),
        ("Evidence", f'{len(alert["evidence"])} event(s): ' + ", ".join(escape(e) for e in alert["evidence"])),
        ("Models", versions or "safety rule only"),
    ]
    facts_html = "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in facts)

    def form(action: str, label: str, extra: str = "") -> str:
        return (f'<form method="post" action="{path}/{action}" class="card action">'
                f'<input type="hidden" name="csrf" value="{escape(csrf)}">{extra}'
                f'<label for="note-{action}">Note for the audit trail</label>'
                f'<textarea id="note-{action}" name="note" maxlength="500" rows="2" required></textarea>'
                f'<button type="submit">{label}</button></form>')

    actions = ""
    if alert["status"] != "resolved":
        if alert["status"] == "firing":
            actions += form("ack", "Acknowledge")
        actions += form("resolve", "Resolve")
        if safety:
            actions += ('<p class="card" id="no-silence"><strong>This alert cannot be silenced.</strong> A safety rule '
                        'raised it (C-SSRS, PHQ-9 item 9 or crisis language), and safety alerts always reach a '
                        'person: silences, digests and repeat caps never mute them.</p>')
        else:
            choices = "".join(f'<option value="{v}">{label}</option>' for v, label in SILENCE_CHOICES)
            actions += form("silence", "Silence this person", f'<label for="duration">Silence for</label>'
                                                               f'<select id="duration" name="duration">{choices}</select>')
    else:
        actions = "<p>This alert is resolved.</p>"
    body = (f'{flash}<dl class="facts">{facts_html}</dl>'
            f'<h2>Why</h2><ul>{reasons}</ul>'
            f'<h2>Risk trend</h2>{_trend(trend)}'
            f'<h2>Actions</h2>{actions}'
            f'<h2>Timeline</h2>{_timeline(timeline)}')
    return _layout(f'{alert["severity"].capitalize()} alert for {alert["subject"]}', body, session=session, csrf=csrf)


def audit_page(entries: Sequence[dict[str, Any]], *, session: Session, csrf: str) -> str:
    if not entries:
        rows = '<tr><td colspan="5">Nothing recorded yet.</td></tr>'
    else:
        rows = "".join(
            f'<tr><td>{escape(_time(e.get("at")))}</td><td>{escape(str(e.get("by") or ""))}</td>'
            f'<td>{escape(str(e.get("action", "")))}{" (" + escape(str(e.get("outcome"))) + ")" if e.get("outcome") else ""}</td>'
            f'<td>{_alert_link(e)}</td><td>{escape(str(e.get("note") or e.get("comment") or ""))}</td></tr>'
            for e in entries)
    table = (f'<table id="audit"><caption>Newest first</caption><thead><tr><th scope="col">When</th>'
             f'<th scope="col">Who</th><th scope="col">What</th><th scope="col">Alert or person</th>'
             f'<th scope="col">Note</th></tr></thead><tbody>{rows}</tbody></table>')
    return _layout(f"Audit trail of {session.team}", table, session=session, csrf=csrf)


def _alert_link(entry: Mapping[str, Any]) -> str:
    if entry.get("alert_id"):
        return f'<a href="/console/alerts/{quote(str(entry["alert_id"]))}">{escape(str(entry.get("subject") or entry["alert_id"]))}</a>'
    return escape(str(entry.get("subject") or ""))
