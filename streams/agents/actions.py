"""The ack API (CONTRACT §3): people's actions on alerts, checked here and applied by the alerting agent.

`POST /v1/alerts/{alert_id}/{ack|resolve}` with a team or member token. The
answers come in the contract's order (alerts/ack.py): 401, 404, 403, 409,
then 200 from what the agent applied, or 503 when it has not applied the
action within 10 s, the send to the broker included (it may still apply;
asking again is safe: a repeated ack changes nothing). An alert in a
partition another worker of the group holds is asked of that worker. Each
refusal goes to the audit trail like a done action, and is answered once
the broker has it, or after 10 s in an outage (the send goes on). The
console's forms come through `perform` and `refuse` too.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import orjson
from faust.web import View

from alerts.ack import ACTIONS, NOTE_CHARS, Principal, Tokens, answer

from . import peers
from .peers import FORWARDED
from .produce import sent_within

if TYPE_CHECKING:
    from ..app import Worker
    from .alerting import Alerting

__all__ = ["Actions", "install"]

#: seconds an action waits for the agent to apply it
_ANSWER_WAIT = 10.0
#: a peer's every answer but 404 (it does not hold the alert either)
_NOT_HERE_EXCEPTED = frozenset(range(100, 600)) - {404}


class Actions:
    """Who may act on an alert, and the answer to each action, for the API and the console."""

    def __init__(self, *, worker: Worker, alerting: Alerting) -> None:
        self.worker = worker
        self.alerting = alerting
        self.tokens = Tokens(worker.settings.care_teams)

    async def act(self, view: View, request: Any, alert_id: str, action: str) -> Any:
        """The HTTP endpoint."""
        principal = self.tokens.authenticate(request.headers.get("Authorization"))
        if principal is None:  # token checks come first (CONTRACT §3), before the body is even read
            code, body = await self.refuse(401, action, alert_id, None, "a valid bearer token is required")
            return view.json(body, status=code)
        note = None
        body = await request.read()
        if body:
            try:
                parsed = orjson.loads(body)
                note = parsed.get("note") if isinstance(parsed, dict) else None
                if not isinstance(parsed, dict) or not isinstance(note, (str, type(None))):
                    raise ValueError
            except ValueError:
                code, answer_body = await self.refuse(400, action, alert_id, principal,
                                                       "body: expected a JSON object with an optional string 'note'")
                return view.json(answer_body, status=code)
        if action in ACTIONS and self.alerting.case(alert_id) is None and not request.headers.get(FORWARDED):
            forwarded = await self._ask_peers(request, alert_id, action, body)
            if forwarded is not None:
                return view.bytes(forwarded[1], status=forwarded[0], content_type="application/json")
        # only what the audit keeps goes on: a note near the body's 1 MB made a command the broker refused
        code, answer_body = await self.perform(principal, alert_id, action, note=note and note[:NOTE_CHARS])
        return view.json(answer_body, status=code, headers={"Retry-After": "5"} if code == 503 else None)

    async def perform(self, principal: Principal, alert_id: str, action: str, *,
                      note: str | None = None) -> tuple[int, dict[str, Any]]:
        """Apply a person's action through the agent and answer from what it applied."""
        code = answer(self.alerting.case(alert_id) if action in ACTIONS else None, principal, action)
        if code != 200:
            reason = {404: "no such alert here", 403: "the alert belongs to another care team",
                      409: "the alert is resolved"}[code]
            return await self.refuse(code, action, alert_id, principal, reason)
        try:
            code, status = await self.alerting.ask(alert_id, {
                "type": "action", "alert_id": alert_id, "action": action, "team": principal.team,
                "member": principal.member, "note": note}, wait=_ANSWER_WAIT)
        except asyncio.TimeoutError:
            self.alerting.metrics.actions.labels(action, "503").inc()
            return 503, {"error": "the action is not applied yet (is the broker away?); ask again"}
        self.alerting.metrics.actions.labels(action, str(code)).inc()
        return code, {"alert_id": alert_id, "status": status}

    async def refuse(self, code: int, action: str, alert_id: str, principal: Principal | None,
                     reason: str) -> tuple[int, dict[str, Any]]:
        """A refused action, counted and on the audit trail like a done one."""
        self.alerting.metrics.actions.labels(action, str(code)).inc()
        entry = {"at": time.time(), "action": action, "alert_id": alert_id,
                 "by": principal.who if principal else None, "code": code}
        # in a broker outage the refusal stands, and its audit entry goes once the broker is back
        await sent_within(_ANSWER_WAIT, [{"topic": self.worker.audit, "key": None, "value": orjson.dumps(entry)}])
        return code, {"error": reason}

    async def _ask_peers(self, request: Any, alert_id: str, action: str, body: bytes) -> tuple[int, bytes] | None:
        """Another worker of the group may hold the alert's partition: ask each once; None if none knows it."""
        answers = await peers.ask(peers.addresses(self.worker.app), "POST", f"/v1/alerts/{alert_id}/{action}",
                                  headers={"Authorization": request.headers.get("Authorization", ""),
                                           "Content-Type": "application/json"},
                                  data=body, accept=_NOT_HERE_EXCEPTED, wait=_ANSWER_WAIT + 5)
        return answers[0] if answers else None


def install(worker: Worker, alerting: Alerting) -> Actions:
    actions = Actions(worker=worker, alerting=alerting)

    @worker.app.page("/v1/alerts/{alert_id}/{action}")
    class AlertAction(View):
        async def post(self, request, alert_id: str, action: str):
            return await actions.act(self, request, alert_id, action)

    return actions
