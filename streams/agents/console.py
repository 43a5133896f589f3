"""The care-team console on the worker's web server: sign-in, inbox, alert pages, actions, audit.

Pages come from console/ (pure HTML); this module feeds them: alerts in care
from the `alert-books` table of the partitions this worker holds, and from
the group's other workers for the rest (the inbox gathers every worker's
cases; an alert page or action for an alert held elsewhere is passed to the
worker that holds it, with the same session: workers share the session key),
risk trends and timelines read back from carewatch.risk and carewatch.audit,
and live inbox updates (server-sent events) when the alerting agent changes
a team's alerts. Actions go through the same path as the ack API and the
silences API, so the audit trail names the person who signed in.

Every page needs a signed session cookie (HttpOnly, Secure, SameSite=Strict);
every form carries a CSRF token tied to the session, and a request from
another origin is refused. A team sees its own alerts and the unassigned
ones, never another team's.
"""

from __future__ import annotations

import asyncio
import heapq
import hmac
import logging
import os
import secrets
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

import orjson
from aiohttp import web
from faust.web import View

from alerts.ack import NOTE_CHARS
from alerts.alert import is_safety
from alerts.routing import UNASSIGNED
import console as console_package
from console import pages
from console.session import COOKIE, Session, Sessions

from . import live, peers
from .history import History
from .peers import FORWARDED
from .produce import sent_within

if TYPE_CHECKING:
    from ..app import Worker
    from .actions import Actions
    from .alerting import Alerting
    from .silences import Silences

__all__ = ["Console", "install"]

log = logging.getLogger(__name__)

_STATIC = Path(console_package.__file__).resolve().parent / "static"
_ASSETS = {"console.css": "text/css", "console.js": "text/javascript"}
#: the double-submit cookie that protects the sign-in form itself (there is no session yet)
_SIGN_IN_COOKIE = "carewatch_sign_in"
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on the console's own forms
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_DONE = {"ack": "Acknowledged: escalation stopped.", "resolve": "Resolved.", "silence": "Silenced."}
#: how long a page waits for the other workers (a dead one is still listed until the group notices), and an
#: action passed on (the worker that holds the alert answers once its agent has applied it)
_PEER_WAIT = 3.0
_ACTION_WAIT = 15.0
#: a peer's answers taken as its own: a page it showed, and what it answered to an action on an alert it holds
_SHOWN = frozenset({200})
_ANSWERED = frozenset({200, 303, 400, 403, 409, 503})
#: seconds a sign-in or sign-out waits for its audit entry to be on the broker
_AUDIT_WAIT = 10.0
#: the answer to a silence the broker has not taken within the silences' wait (an outage)
_UNSENT = ("The event log does not answer (is the broker away?), so the silence is not on it yet. It takes effect "
           "once it is, and then shows in the audit trail: look there before you silence this person again.")


class Console:
    def __init__(self, *, worker: Worker, alerting: Alerting, actions: Actions, silences: Silences) -> None:
        settings = worker.settings
        self.settings = settings.console
        self.worker = worker
        self.alerting = alerting
        self.actions = actions
        self.silences = silences
        key = os.environ.get(self.settings.session_secret_env, "").encode()
        #: no key configured: one made for this start (said in the log once logging is set up)
        self.made_key = not key
        self.sessions = Sessions(key=key or secrets.token_bytes(32), ttl=self.settings.session_ttl)
        self.origin = _origin(settings.public_url)
        self.risk = History(bootstrap_servers=settings.kafka.bootstrap_servers, topic=worker.risk.get_topic_name())
        self.audit = History(bootstrap_servers=settings.kafka.bootstrap_servers, topic=worker.audit.get_topic_name())

    # -- sessions -------------------------------------------------------------------------------

    def session(self, request: Any) -> Session | None:
        session = self.sessions.read(request.cookies.get(COOKIE), now=time.time())
        if session is None or not self.actions.tokens.knows(session.principal):
            return None
        return session

    def _cookie(self, response: web.Response, name: str, value: str, *, max_age: int) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/console", httponly=True, secure=True,
                            samesite="Strict")

    def _same_origin(self, request: Any) -> bool:
        """A browser names the page a form came from; another site's page is refused."""
        origin = request.headers.get("Origin")
        if origin is None:  # not sent by every browser on a same-origin post; the CSRF token still is checked
            return True
        return origin.rstrip("/") in (self.origin, _origin(f"{request.scheme}://{request.host}"))

    async def sign_in_form(self, request: Any, *, error: str | None = None, status: int = 200) -> web.Response:
        token = secrets.token_urlsafe(24)
        next_path = _local(request.query.get("next") or (await _form(request)).get("next"))
        response = _html(pages.sign_in_page(csrf=token, next_path=next_path, error=error), status=status)
        self._cookie(response, _SIGN_IN_COOKIE, token, max_age=3600)
        return response

    async def sign_in(self, request: Any) -> web.Response:
        form = await _form(request)
        expected = request.cookies.get(_SIGN_IN_COOKIE, "")
        if not self._same_origin(request) or not expected or not hmac.compare_digest(expected, form.get("csrf", "")):
            return await self.sign_in_form(request, error="The sign-in form expired. Please try again.", status=403)
        principal = self.actions.tokens.authenticate(f"Bearer {form.get('token', '')}")
        if principal is None:
            await self._audit({"action": "sign-in", "by": None, "outcome": "refused"}, key=None)
            return await self.sign_in_form(request, error="That token is not valid.", status=401)
        session, cookie = self.sessions.issue(principal, now=time.time())
        await self._audit({"action": "sign-in", "by": principal.who, "care_team": principal.team,
                           "outcome": "ok"}, key=principal.team)
        response = _redirect(_local(form.get("next")))
        self._cookie(response, COOKIE, cookie, max_age=int(self.sessions.ttl))
        response.del_cookie(_SIGN_IN_COOKIE, path="/console")
        return response

    async def sign_out(self, request: Any) -> web.Response:
        session, refused = await self._checked_post(request)
        if refused is not None:
            return refused
        await self._audit({"action": "sign-out", "by": session.principal.who, "care_team": session.team},
                          key=session.team)
        response = _redirect("/console/sign-in")
        response.del_cookie(COOKIE, path="/console")
        return response

    async def _checked_post(self, request: Any) -> tuple[Session | None, web.Response | None]:
        """The session of a form post, or the refusal: no session, another origin, or a wrong CSRF token."""
        session = self.session(request)
        if session is None:
            return None, _html(pages.message_page("Signed out", "Your session has ended. Sign in again."),
                               status=401)
        form = await _form(request)
        if not self._same_origin(request) or not self.sessions.check_csrf(session, form.get("csrf")):
            return None, _html(pages.message_page("Refused", "This form did not come from this console page. "
                                                              "Open the page again and retry."), status=403)
        return session, None

    def _signed_out(self, request: Any) -> web.Response:
        return _redirect(f"/console/sign-in?next={quote(request.path_qs)}")

    # -- pages ----------------------------------------------------------------------------------

    def _visible(self, session: Session, filters: dict[str, str]) -> tuple[list[dict[str, Any]], int]:
        """The inbox's cases held here: the first `pages.INBOX_ROWS` in its order, and how many match in all."""
        status, severity = filters.get("status"), filters.get("severity")
        matching = [(pages.rank(sev, raised), alert_id) for alert_id, sev, state, raised
                    in self.alerting.held.summaries(session.team)
                    if (state == status if status else state != "resolved") and (not severity or sev == severity)]
        cases = [self.alerting.case(alert_id) for _, alert_id in heapq.nsmallest(pages.INBOX_ROWS, matching)]
        return [case for case in cases if case is not None], len(matching)

    async def inbox(self, request: Any, *, rows_only: bool = False) -> web.Response:
        session = self.session(request)
        if session is None:
            return web.Response(status=401, headers=_HEADERS) if rows_only else self._signed_out(request)
        filters = {"severity": request.query.get("severity", ""), "status": request.query.get("status", "")}
        if filters["severity"] not in ("", "critical", "urgent", "watch"):
            filters["severity"] = ""
        if filters["status"] not in ("", "firing", "acknowledged", "resolved"):
            filters["status"] = ""
        (cases, matching), now = self._visible(session, filters), time.time()
        if not request.headers.get(FORWARDED):
            query = urlencode({k: v for k, v in filters.items() if v})
            for _, body in await self._ask_peers(request, "GET", f"/console/inbox/cases?{query}", accept=_SHOWN):
                theirs = orjson.loads(body)
                if isinstance(theirs, list):  # a worker of the release before, while the group is upgraded
                    theirs = {"cases": theirs, "matching": len(theirs)}
                cases += theirs["cases"]
                matching += theirs["matching"]
            cases = pages.order({case["alert"]["alert_id"]: case for case in cases}.values())[:pages.INBOX_ROWS]
        if rows_only:
            return _html(pages.inbox_rows(cases, now=now, matching=matching))
        return _html(pages.inbox_page(cases, session=session, csrf=self.sessions.csrf(session), filters=filters,
                                      now=now, matching=matching))

    async def cases(self, request: Any) -> web.Response:
        """The inbox's cases held here, for another worker's inbox (as JSON)."""
        session = self.session(request)
        if session is None:
            return web.Response(status=401, headers=_HEADERS)
        filters = {key: request.query.get(key, "") for key in ("severity", "status")}
        cases, matching = self._visible(session, filters)
        return web.Response(body=orjson.dumps({"cases": cases, "matching": matching}),
                            content_type="application/json", headers=_HEADERS)

    async def _ask_peers(self, request: Any, method: str, path: str, *, accept: frozenset[int],
                         form: dict[str, str] | None = None, first: bool = False) -> list[tuple[int, bytes]]:
        """The other workers' answers with a status in `accept` to the same request with the same session
        (only the first if `first`); one that does not know the session (another key) is left out, and said
        in the log when the inbox gathers."""
        headers = {"Cookie": f"{COOKIE}={request.cookies.get(COOKIE, '')}"}
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        answers = await peers.ask(peers.addresses(self.worker.app), method, path, headers=headers,
                                  accept=accept if first else accept | {401}, data=urlencode(form) if form is not None else None,
                                  wait=_ACTION_WAIT if form is not None else _PEER_WAIT, first=first)
        if any(status == 401 for status, _ in answers):
            log.warning("a peer worker refused this console session: set the same %s on every worker",
                        self.settings.session_secret_env)
        return [(status, body) for status, body in answers if status != 401]

    def _case_for(self, session: Session, alert_id: str) -> dict[str, Any] | None:
        case = self.alerting.case(alert_id)
        if case is None or case["alert"]["care_team"] not in (session.team, UNASSIGNED):
            return None  # another team's alert reads as no alert at all
        return case

    async def alert(self, request: Any, alert_id: str) -> web.Response:
        session = self.session(request)
        if session is None:
            return self._signed_out(request)
        csrf = self.sessions.csrf(session)
        case = self._case_for(session, alert_id)
        if case is None and not request.headers.get(FORWARDED):
            for status, body in await self._ask_peers(request, "GET", request.path_qs, accept=_SHOWN, first=True):
                return web.Response(body=body, status=status, content_type="text/html", charset="utf-8",
                                    headers=_HEADERS)
        if case is None:
            return _html(pages.message_page("No such alert", "There is no alert with this address for your team.",
                                            session=session, csrf=csrf), status=404)
        subject = case["alert"]["subject"]
        trend, timeline = await asyncio.gather(self._trend(subject), self._timeline(subject, alert_id))
        return _html(pages.alert_page(case, session=session, csrf=csrf, trend=trend, timeline=timeline,
                                      safety=is_safety(case["alert"]), now=time.time(),
                                      done=_DONE.get(request.query.get("done", ""))))

    async def _trend(self, subject: str) -> list[tuple[float, float]] | None:
        key = subject.encode()
        partition = self.worker.app.producer.key_partition(self.risk.topic, key).partition
        records = await self.risk.newest([partition], per_partition=self.settings.trend_window)
        if records is None:
            return None
        points = []
        for record in records:
            if record.key != key:
                continue
            value = orjson.loads(record.value)
            if value.get("risk") is not None:  # by event time: the person's days, not when they were scored
                points.append((datetime.fromisoformat(value["event_time"]).timestamp(), float(value["risk"])))
        return sorted(points)[-self.settings.trend_points:]

    async def _timeline(self, subject: str, alert_id: str) -> list[dict[str, Any]] | None:
        key = subject.encode()
        partition = self.worker.app.producer.key_partition(self.audit.topic, key).partition
        records = await self.audit.newest([partition], per_partition=self.settings.audit_window)
        if records is None:
            return None
        entries = [orjson.loads(r.value) for r in records if r.key == key]
        return sorted((e for e in entries if e.get("alert_id") == alert_id), key=lambda e: e.get("at") or 0)

    async def act(self, request: Any, alert_id: str, action: str) -> web.Response:
        session, refused = await self._checked_post(request)
        if refused is not None:
            return refused
        csrf = self.sessions.csrf(session)
        form = await _form(request)
        note = form.get("note", "").strip()[:NOTE_CHARS]
        case = self._case_for(session, alert_id)

        async def refuse(code: int, title: str, text: str) -> web.Response:  # audited like the ack API's refusals
            await self.actions.refuse(code, action, alert_id, session.principal, title)
            return _html(pages.message_page(title, text, session=session, csrf=csrf), status=code)

        if case is None and request.headers.get(FORWARDED):  # the worker asked refuses (and audits) if none has it
            return _html(pages.message_page("No such alert", "", session=session, csrf=csrf), status=404)
        if case is None and action in ("ack", "resolve", "silence"):
            for status, body in await self._ask_peers(request, "POST", request.path, accept=_ANSWERED, form=form,
                                                      first=True):
                if status == 303:  # done there: back to the alert's page here
                    return _redirect(f"/console/alerts/{quote(alert_id)}?done={action}")
                return web.Response(body=body, status=status, content_type="text/html", charset="utf-8",
                                    headers=_HEADERS)
        if case is None or action not in ("ack", "resolve", "silence"):
            return await refuse(404, "No such alert", "There is no alert with this address for your team.")
        back = f"/console/alerts/{quote(alert_id)}"
        if not note:
            return await refuse(400, "A note is needed", "Write a short note for the audit trail, then try again.")
        if action == "silence":
            if is_safety(case["alert"]):
                return await refuse(409, "Cannot be silenced", "A safety rule raised this alert; safety alerts always "
                                                          "reach a person.")
            try:
                await self.silences.make(session.principal, {"subject": case["alert"]["subject"],
                                                              "duration": form.get("duration", ""),
                                                              "comment": note})
            except ValueError as exc:
                return _html(pages.message_page("Not silenced", str(exc), session=session, csrf=csrf), status=400)
            except asyncio.TimeoutError:
                return _html(pages.message_page("Not silenced yet", _UNSENT, session=session, csrf=csrf), status=503)
        else:
            code, body = await self.actions.perform(session.principal, alert_id, action, note=note)
            if code != 200:
                return _html(pages.message_page("Not done", body.get("error", ""), session=session, csrf=csrf),
                             status=code)
        return _redirect(f"{back}?done={action}")

    async def audit_view(self, request: Any) -> web.Response:
        session = self.session(request)
        if session is None:
            return self._signed_out(request)
        records = await self.audit.newest(range(self.worker.audit.partitions),
                                          per_partition=self.settings.audit_window)
        if records is None:
            return _html(pages.message_page("Audit trail not available", pages.UNREAD, session=session,
                                            csrf=self.sessions.csrf(session)), status=503)
        entries = [e for e in (orjson.loads(r.value) for r in records) if e.get("care_team") == session.team]
        entries.sort(key=lambda e: e.get("at") or 0, reverse=True)
        return _html(pages.audit_page(entries[:300], session=session, csrf=self.sessions.csrf(session)))

    async def events(self, request: Any) -> web.StreamResponse:
        session = self.session(request)
        if session is None:
            return web.Response(status=401, headers=_HEADERS)
        return await live.stream(request, session=session, alerting=self.alerting, headers=_HEADERS)

    async def _audit(self, entry: dict[str, Any], *, key: str | None) -> None:
        """On the broker before the answer, or after 10 s in an outage (the send goes on)."""
        await sent_within(_AUDIT_WAIT, [{"topic": self.worker.audit, "key": key.encode() if key else None,
                                         "value": orjson.dumps({"at": time.time(), **entry})}])


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={**_HEADERS, "Location": location})


def _html(body: str, *, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8", headers=_HEADERS)


async def _form(request: Any) -> dict[str, str]:
    if request.method != "POST":
        return {}
    return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}


def _local(path: str | None) -> str:
    """Where to go after signing in: a console path only (no open redirect)."""
    if path and path.startswith("/console/") and not path.startswith("//") and "\\" not in path:
        return path
    return "/console/inbox"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def install(worker: Worker, alerting: Alerting, actions: Actions, silences: Silences) -> Console | None:
    if not worker.settings.console.enabled:
        return None
    app = worker.app
    console = Console(worker=worker, alerting=alerting, actions=actions, silences=silences)

    @app.page("/console")
    class Home(View):
        async def get(self, request):
            return _redirect("/console/inbox")

    @app.page("/console/sign-in")
    class SignIn(View):
        async def get(self, request):
            return await console.sign_in_form(request)

        async def post(self, request):
            return await console.sign_in(request)

    @app.page("/console/sign-out")
    class SignOut(View):
        async def post(self, request):
            return await console.sign_out(request)

    @app.page("/console/inbox")
    class Inbox(View):
        async def get(self, request):
            return await console.inbox(request)

    @app.page("/console/inbox/rows")
    class InboxRows(View):
        async def get(self, request):
            return await console.inbox(request, rows_only=True)

    @app.page("/console/inbox/cases")
    class InboxCases(View):
        async def get(self, request):
            return await console.cases(request)

    @app.page("/console/events")
    class Events(View):
        async def get(self, request):
            return await console.events(request)

    @app.page("/console/alerts/{alert_id}")
    class AlertPage(View):
        async def get(self, request, alert_id: str):
            return await console.alert(request, alert_id)

    @app.page("/console/alerts/{alert_id}/{action}")
    class AlertAction(View):
        async def post(self, request, alert_id: str, action: str):
            return await console.act(request, alert_id, action)

    @app.page("/console/audit")
    class Audit(View):
        async def get(self, request):
            return await console.audit_view(request)

    @app.page("/console/static/{name}")
    class Static(View):
        async def get(self, request, name: str):
            if name not in _ASSETS:
                return web.Response(status=404, headers=_HEADERS)
            return web.Response(body=(_STATIC / name).read_bytes(), content_type=_ASSETS[name],
                                headers={**_HEADERS, "Cache-Control": "max-age=300"})

    @app.task
    async def lifetime() -> None:
        if console.made_key:
            log.warning("%s is not set: console sessions are signed with a key made at start and end at a restart",
                        console.settings.session_secret_env)
        try:  # the read-back consumers stop with the worker
            await asyncio.Event().wait()
        finally:
            await asyncio.gather(console.risk.stop(), console.audit.stop(), return_exceptions=True)

    return console
