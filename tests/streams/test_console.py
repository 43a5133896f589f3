"""The care-team console, end to end: a real worker on the real broker, driven by Debian's Chromium.

The browser test is what a nurse does: sign in (by keyboard), watch a critical
alert appear live, open it, acknowledge it with a note, see escalation stop
and the audit entry appear. Screenshots at phone and desktop widths go to
docs/console/ (linked from the README). The security test speaks HTTP
directly: another team's session, no cookie, a forged cookie, forms without
their CSRF token or from another origin, and no event text in any page.
"""

from __future__ import annotations

import base64
import re
import shutil
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import orjson
import pytest

from streams.topics import ALERTS, AUDIT
from tests.alerts.conftest import alert
from tests.factory import event
from tests.processes import wait_for
from tests.receivers import HttpReceiver
from tests.streams.test_alerting import alerting_config, crisis, held_by, two_workers
from tests.visitor import Visitor

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "console"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: a phrase of the kind the crisis detector flags, with a marker no page may ever show
CANARY = "I want to kill myself tonight heron 5521"

# WCAG 2.1 contrast of every element's own text against the first opaque background behind it
_CONTRAST = """() => {
  const lum = (c) => { const [r, g, b] = c.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
                       return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const rgba = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const bg = (el) => { for (; el; el = el.parentElement) { const c = rgba(getComputedStyle(el).backgroundColor);
                         if (c.length === 3 || c[3] > 0) return c.slice(0, 3); } return [255, 255, 255]; };
  const worst = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length) continue;
    const a = lum(rgba(getComputedStyle(el).color).slice(0, 3)), b = lum(bg(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) worst.push(el.tagName + " " + ratio.toFixed(2) + " " + el.textContent.trim().slice(0, 30));
  }
  return worst;
}"""


def console_config(hook_url: str) -> dict:
    return alerting_config(hook_url)


def crisis_survey(topics, subject: str, event_id: str) -> None:
    """Consent, a few nights of worsening sleep (scored: the risk trend), then a C-SSRS screener with q5 yes."""
    start = datetime.now(timezone.utc) - timedelta(days=8)
    records = [event("consent", subject=subject, event_id=f"{event_id}-consent", when=start)]
    records += [event("wearable", subject=subject, event_id=f"{event_id}-sleep{i}", when=start + timedelta(days=i),
                      metric="sleep_duration", value=7.5 - 0.6 * i, unit="h") for i in range(1, 8)]
    records.append(event("survey", subject=subject, event_id=event_id, instrument="cssrs_screener",
                         when=datetime.now(timezone.utc),
                         items={"q1": True, "q2": True, "q3": True, "q4": False, "q5": True, "q6": False}))
    topics.send_raw([(subject.encode(), orjson.dumps(r)) for r in records])


def sign_in_by_keyboard(page, url: str, token: str) -> None:
    page.goto(f"{url}/console/inbox")
    page.wait_for_url(re.compile(r".*/console/sign-in.*"))
    for _ in range(10):  # Tab from the top of the page to the token field: no mouse
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == "token":
            break
    assert page.evaluate("document.activeElement.id") == "token"
    page.keyboard.type(token)
    page.keyboard.press("Enter")


def test_a_nurse_signs_in_sees_a_critical_alert_live_acknowledges_it_and_escalation_stops(worker_factory, topics):
    sync_api = pytest.importorskip("playwright.sync_api")
    hook = HttpReceiver()
    worker = worker_factory(config=console_config(hook.url))
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        desk = browser.new_context(viewport={"width": 1280, "height": 800})
        page = desk.new_page()

        sign_in_by_keyboard(page, worker.url, "not-a-token")
        assert page.locator("#sign-in-error").inner_text() == "That token is not valid."
        assert "team-north" not in page.content()
        sign_in_by_keyboard(page, worker.url, "alice")
        page.wait_for_selector("#inbox")
        cookie = next(c for c in desk.cookies() if c["name"] == "carewatch_session")
        assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
        assert "team-north · alice" in page.locator("header").inner_text()
        page.wait_for_selector("#inbox[data-live='1']")  # the live stream is open
        page.evaluate("window.stillHere = 'no reload'")

        crisis_survey(topics, "p-con01", "con-1")
        row = page.wait_for_selector("#inbox-rows tr.sev-critical", timeout=60_000)
        assert page.evaluate("window.stillHere") == "no reload"  # it arrived live
        assert "C-SSRS: suicidal intent with a plan" in row.inner_text()
        assert "Escalates in" in row.inner_text() and "Open" in row.inner_text()
        assert page.evaluate(_CONTRAST) == []
        page.screenshot(path=str(SHOTS / "inbox-desktop.png"), full_page=True)

        page.click("#inbox-rows tr.sev-critical a")
        page.wait_for_url(re.compile(r".*/console/alerts/al-[0-9a-f]+$"))
        alert_id = page.url.rsplit("/", 1)[1]
        hook_alert = wait_for(lambda: [r for r in hook.received() if r.headers["webhook-id"] == f"{alert_id}.fire"],
                              timeout=30, what="the alert at the webhook")[0].json()
        assert hook_alert["links"]["page"] == page.url  # every channel links to this page
        assert hook_alert["links"]["ack"].endswith(f"/v1/alerts/{alert_id}/ack")
        text = page.locator("main").inner_text()
        assert "C-SSRS: suicidal intent with a plan" in text and "cannot be silenced" in text
        assert page.locator("form[action$='/silence']").count() == 0
        assert "risk scores from" in page.locator("figure.trend").inner_text()
        wait_for(lambda: [r for r in hook.received() if r.headers["webhook-id"] == f"{alert_id}.esc1"], timeout=30,
                 what="the first escalation")
        page.reload()
        assert "Escalated (step 1)" in page.locator("ol.timeline").inner_text()
        assert page.evaluate(_CONTRAST) == []
        page.screenshot(path=str(SHOTS / "alert-desktop.png"), full_page=True)

        page.fill("#note-ack", "Called the person; safety plan in place")
        page.click("form[action$='/ack'] button")
        page.wait_for_url(re.compile(r".*\?done=ack$"))
        main = page.locator("main").inner_text()
        assert "Acknowledged: escalation stopped." in main and "Escalation stopped: a person has it" in main
        timeline = page.locator("ol.timeline").inner_text()
        assert "Acknowledged by team-north/alice" in timeline and "Called the person; safety plan in place" in timeline
        escalations = {r.headers["webhook-id"] for r in hook.received() if ".esc" in r.headers["webhook-id"]}
        acked_at = time.monotonic()
        wait_for(lambda: [r for r in hook.received() if r.headers["webhook-id"] == f"{alert_id}.acknowledged"],
                 timeout=30, what="the acknowledged update")

        page.click("nav a[href='/console/audit']")
        audit = page.locator("#audit").inner_text()
        assert "team-north/alice" in audit and "Called the person; safety plan in place" in audit

        phone = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True,
                                    storage_state=desk.storage_state())
        small = phone.new_page()
        for path, name in (("/console/inbox?status=acknowledged", "inbox-phone"),
                           (f"/console/alerts/{alert_id}", "alert-phone")):
            small.goto(f"{worker.url}{path}")
            assert small.evaluate("document.documentElement.scrollWidth") <= 360, f"{name} scrolls sideways"
            small.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        assert "p-con01" in small.content()
        browser.close()

    # absence: the next step was due 3 s after the first; it must not come after the ack
    while time.monotonic() < acked_at + 4:
        time.sleep(0.2)
    assert {r.headers["webhook-id"] for r in hook.received() if ".esc" in r.headers["webhook-id"]} == escalations
    hook.stop()


@pytest.fixture
def visitor():
    """`visitor(url)`: a Visitor closed after the test."""
    made: list[Visitor] = []

    def make(url: str) -> Visitor:
        made.append(Visitor(url))
        return made[-1]

    yield make
    for one in made:
        one.client.close()


def test_another_team_sees_nothing_and_missing_or_forged_sessions_and_cross_site_forms_are_refused(
        worker_factory, topics, visitor):
    hook = HttpReceiver()
    worker = worker_factory(config=console_config(hook.url))
    consent = event("consent", subject="p-sec01", event_id="sec-consent")
    text = event("text", subject="p-sec01", event_id="sec-1", text=CANARY, lang="en")
    topics.send_raw([(b"p-sec01", orjson.dumps(consent)), (b"p-sec01", orjson.dumps(text))])
    alert_id = wait_for(lambda: hook.received(), timeout=60, what="the alert")[0].json()["alert_id"]

    north = visitor(worker.url)
    signed_in = north.sign_in("north-token")
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/console/inbox"
    set_cookie = next(h for h in signed_in.headers.get_list("set-cookie") if h.startswith("carewatch_session="))
    for attribute in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/console"):
        assert attribute in set_cookie
    assert "north-token" not in set_cookie
    inbox = north.request("GET", "/console/inbox")
    assert inbox.status_code == 200 and "p-sec01" in inbox.text
    assert "script-src 'self'" in inbox.headers["content-security-policy"]
    assert inbox.headers["x-content-type-options"] == "nosniff"
    page = north.request("GET", f"/console/alerts/{alert_id}")
    assert page.status_code == 200 and "Crisis language in a journal or chat entry" in page.text
    pages = [inbox, page, north.request("GET", "/console/audit"), north.request("GET", "/console/inbox/rows")]
    for shown in pages:  # no event text on any page
        assert "heron" not in shown.text and "kill myself" not in shown.text

    south = visitor(worker.url)
    assert south.sign_in("south-token").status_code == 303
    assert "p-sec01" not in south.request("GET", "/console/inbox").text
    assert "p-sec01" not in south.request("GET", "/console/inbox/rows?status=firing").text
    theirs = south.request("GET", f"/console/alerts/{alert_id}")
    assert theirs.status_code == 404 and "p-sec01" not in theirs.text
    refused = south.request("POST", f"/console/alerts/{alert_id}/ack",
                            data={"csrf": south.csrf(), "note": "not mine"})
    assert refused.status_code == 404
    assert "p-sec01" not in south.request("GET", "/console/audit").text
    wait_for(lambda: [e for r in topics.read_all("carewatch.audit") if (e := orjson.loads(r.value)).get("alert_id")
                      == alert_id and e.get("code") == 404 and "team-south" in str(e.get("by"))],
             timeout=30, what="south's refused console action on the audit trail")

    stranger = visitor(worker.url)
    assert stranger.request("GET", "/console/inbox").status_code == 303  # to the sign-in page
    assert stranger.request("GET", "/console/inbox").headers["location"].startswith("/console/sign-in")
    assert stranger.request("GET", "/console/inbox/rows").status_code == 401
    assert stranger.request("GET", "/console/events").status_code == 401
    assert stranger.request("GET", f"/console/alerts/{alert_id}").status_code == 303
    assert stranger.request("POST", f"/console/alerts/{alert_id}/ack", data={"note": "x"}).status_code == 401
    bad = stranger.sign_in("south-token-wrong")
    assert bad.status_code == 401 and "That token is not valid." in bad.text and "carewatch_session" not in str(
        bad.headers.get_list("set-cookie"))

    # a forged session: south's cookie with its team changed to team-north, the signature kept
    body, signature = south.cookies["carewatch_session"].split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    forged = base64.urlsafe_b64encode(orjson.dumps(claims | {"t": "team-north"})).decode().rstrip("=")
    forger = visitor(worker.url)
    forger.cookies["carewatch_session"] = f"{forged}.{signature}"
    assert forger.request("GET", "/console/inbox").status_code == 303
    assert forger.request("GET", f"/console/alerts/{alert_id}").status_code == 303
    assert forger.request("POST", f"/console/alerts/{alert_id}/ack", data={"note": "x"}).status_code == 401

    # cross-site request forgery: north's cookie, but no token, a wrong token, or another origin
    csrf = north.csrf()
    assert north.request("POST", f"/console/alerts/{alert_id}/ack", data={"note": "x"}).status_code == 403
    assert north.request("POST", f"/console/alerts/{alert_id}/ack",
                         data={"note": "x", "csrf": csrf[:-2] + "xx"}).status_code == 403
    assert north.request("POST", f"/console/alerts/{alert_id}/ack", data={"note": "x", "csrf": csrf},
                         headers={"Origin": "http://evil.example"}).status_code == 403
    assert north.request("POST", "/console/sign-out", data={}).status_code == 403
    sign_in_csrf = stranger.csrf("/console/sign-in")
    stranger.cookies.pop("carewatch_sign_in")  # the form's token without its cookie: a forged sign-in
    assert stranger.request("POST", "/console/sign-in", data={"csrf": sign_in_csrf, "token": "north-token"}
                            ).status_code == 403
    assert "<dd>Open</dd>" in north.request("GET", f"/console/alerts/{alert_id}").text  # nothing applied

    # and with everything right, it applies; the audit names the team token
    done = north.request("POST", f"/console/alerts/{alert_id}/resolve", data={"note": "seen in clinic", "csrf": csrf})
    assert done.status_code == 303
    assert "<dd>Resolved</dd>" in north.request("GET", done.headers["location"]).text
    assert north.request("POST", "/console/sign-out", data={"csrf": csrf}).status_code == 303
    assert "carewatch_session" not in north.cookies
    audit = [orjson.loads(r.value) for r in topics.read_all(AUDIT)]
    assert any(e.get("action") == "resolve" and e.get("by") == "team-north" and e.get("note") == "seen in clinic"
               for e in audit)
    assert any(e.get("action") == "sign-in" and e.get("by") == "team-south" for e in audit)
    for entry in audit:
        assert "heron" not in orjson.dumps(entry).decode()
    assert "heron" not in worker.log()
    hook.stop()


def test_a_storm_gets_a_bounded_inbox_and_live_updates_at_most_once_a_second(worker_factory, topics, visitor):
    """With every alert held listed and a live update at each change of the books, 5,000 alerts made a page 0.3 s
    of the worker's loop and 1.6 MB, and three open inboxes slowed routing 1,000 more from 4 s to 120 s."""
    hook = HttpReceiver()
    config = console_config(hook.url)
    config["routes"] = [{"match": {}, "channels": ["hook"]}]
    held = [alert(alert_id=f"al-{i:040x}", subject=f"p-many{i:03d}", severity="urgent") for i in range(250)]
    held.append(alert(alert_id=f"al-{999:040x}", subject="p-many999", severity="critical"))
    topics.send_raw([(a["subject"].encode(), orjson.dumps(a)) for a in held], topic=ALERTS)
    worker = worker_factory(config=config)
    wait_for(lambda: len({r.json()["alert_id"] for r in hook.received()}) == len(held), timeout=120,
             what="every alert at the webhook")
    north = visitor(worker.url)
    assert north.sign_in("north-token").status_code == 303
    rows = north.request("GET", "/console/inbox/rows").text
    assert rows.count("data-alert=") == 200 and rows.index(f"al-{999:040x}") < rows.index(f"al-{0:040x}")
    assert "The 200 most severe and oldest of 251 alerts are shown" in rows
    assert north.request("GET", "/console/inbox/rows?severity=critical").text.count("data-alert=") == 1

    told: list[float] = []

    def listen() -> None:
        cookie = "; ".join(f"{k}={v}" for k, v in north.cookies.items())
        try:
            with httpx.stream("GET", f"{worker.url}/console/events", headers={"Cookie": cookie},
                              timeout=None) as events:
                for line in events.iter_lines():
                    if line == "event: inbox":
                        told.append(time.monotonic())
        except httpx.HTTPError:  # the worker stopped at the end of the test
            pass

    threading.Thread(target=listen, daemon=True).start()
    for i in range(30):  # one alert at a time, each applied by the agent before the next: a change each
        more = alert(alert_id=f"al-{1000 + i:040x}", subject=f"p-more{i:03d}", severity="urgent")
        topics.send_raw([(more["subject"].encode(), orjson.dumps(more))], topic=ALERTS)
        wait_for(lambda: more["alert_id"] in {r.json()["alert_id"] for r in hook.received()}, timeout=30,
                 what="the alert at the webhook")
    last = time.monotonic()
    wait_for(lambda: told and told[-1] > last - 0.1, timeout=10, what="an update after the last change")
    assert len(told) >= 2 and all(later - earlier >= 0.9 for earlier, later in zip(told, told[1:])), told
    hook.stop()


def test_with_two_workers_the_console_of_either_shows_and_acts_on_every_alert_of_the_team(
        worker_factory, topics, visitor, monkeypatch):
    monkeypatch.setenv("CONSOLE_TWO_WORKERS_SECRET", "a key both workers share, 32 bytes")
    hook = HttpReceiver()
    config = console_config(hook.url) | {"console": {"session_secret_env": "CONSOLE_TWO_WORKERS_SECRET"}}
    one, two = two_workers(worker_factory, config)
    crisis(topics, "p-con01", "con-1")
    alert_id = wait_for(lambda: hook.received(), timeout=60, what="the alert")[0].json()["alert_id"]
    _, other = held_by("p-con01", one, two)  # the worker that does not hold the alert

    north = visitor(other.url)
    assert north.sign_in("north-token").status_code == 303
    assert alert_id in north.request("GET", "/console/inbox").text
    assert alert_id in north.request("GET", "/console/inbox/rows").text
    page = north.request("GET", f"/console/alerts/{alert_id}")
    assert page.status_code == 200 and "p-con01" in page.text
    done = north.request("POST", f"/console/alerts/{alert_id}/ack",
                         data={"csrf": north.csrf(), "note": "called, safe with family"})
    assert done.status_code == 303 and done.headers["location"] == f"/console/alerts/{alert_id}?done=ack"
    assert "Acknowledged" in north.request("GET", done.headers["location"]).text

    south = visitor(other.url)
    assert south.sign_in("south-token").status_code == 303
    assert alert_id not in south.request("GET", "/console/inbox").text
    assert south.request("GET", f"/console/alerts/{alert_id}").status_code == 404
    refused = south.request("POST", f"/console/alerts/{alert_id}/resolve", data={"csrf": south.csrf(), "note": "x"})
    assert refused.status_code == 404

    def audited():
        entries = [orjson.loads(r.value) for r in topics.read_all(AUDIT)]
        return [e for e in entries if e.get("alert_id") == alert_id and e.get("action") in ("ack", "resolve")]

    # the ack, and the refusal once: by the worker asked (the one that passed it on asked first, and audits nothing)
    entries = wait_for(lambda: (found := audited()) and any(e.get("by") == "team-south" for e in found) and found,
                       timeout=30, what="the ack and the refusal on the audit trail")
    assert any(e["action"] == "ack" and e.get("by") == "team-north" and e.get("note") for e in entries)
    assert [(e["action"], e["code"]) for e in entries if e.get("by") == "team-south"] == [("resolve", 404)]
    hook.stop()


def test_workers_with_different_session_keys_each_show_their_own_alerts_and_say_why(worker_factory, topics, visitor):
    hook = HttpReceiver()
    config = console_config(hook.url)  # no shared key: each worker makes its own
    one, two = two_workers(worker_factory, config)
    crisis(topics, "p-key01", "key-1")
    alert_id = wait_for(lambda: hook.received(), timeout=60, what="the alert")[0].json()["alert_id"]
    holder, other = held_by("p-key01", one, two)
    for worker, shown in ((holder, True), (other, False)):
        north = visitor(worker.url)
        assert north.sign_in("north-token").status_code == 303
        inbox = north.request("GET", "/console/inbox")
        assert inbox.status_code == 200 and (alert_id in inbox.text) is shown
    assert "refused this console session: set the same CAREWATCH_CONSOLE_SECRET on every worker" in other.log()
    hook.stop()
