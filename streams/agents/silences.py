"""Silences made through the API: kept on a compacted topic that every worker reads whole.

`POST /v1/silences` (team or member token) makes a silence scoped to the
token's team, for a subject pattern or the whole team, `until` a time or for
a `duration` (at most 30 days); `GET /v1/silences` lists the team's active
ones; `DELETE /v1/silences/{id}` expires one. Every worker follows the topic
from its start, so a silence applies to every partition; the API answers
once its own worker has read the silence back. Safety alerts are never
muted, whatever the silence (alerts/silences.py). Each change is audited,
the audit entry first: a crash between the two leaves an entry of a change
that did not happen, never a change without one. When the broker has not
taken both within 10 s (an outage), the answer is 503 and the sends go on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.web import View

from alerts.ack import Principal, Tokens
from alerts.silences import Silence, from_config, from_request

from .produce import send_all

if TYPE_CHECKING:
    from ..app import Worker
    from .alerting import Alerting

__all__ = ["Silences", "install"]

log = logging.getLogger(__name__)

#: seconds between two looks for silences that ended, to stop matching alerts against them
_ENDED_EVERY = 60.0
#: seconds a change waits for the broker to take it and this worker to read it back
_WAIT = 10.0
#: the answer when the broker has not taken a change within `_WAIT`
_UNSENT = ("the change is not on the broker yet (is the broker away?): it takes effect once it is; "
           "GET /v1/silences shows whether it has before you ask again")


class Silences:
    def __init__(self, *, worker: Worker, alerting: Alerting, tokens: Tokens) -> None:
        self.worker = worker
        self.alerting = alerting
        self.tokens = tokens
        self.configured = from_config(worker.settings.silences)
        self.made: dict[str, Silence] = {}
        self._forgetting: set[str] = set()  # ids whose tombstone is sent and not yet read back
        self.read_to = -1
        self._progress = asyncio.Event()
        self._applied = 0.0

    def _apply(self) -> None:
        """The dispatcher matches every alert against the silences in force only: the topic keeps every silence
        ever made, and 10,000 that had ended cost 0.27 ms a model alert."""
        now = time.time()
        self.alerting.dispatcher.silences[:] = [s for s in [*self.configured, *self.made.values()] if s.until > now]
        self._applied = time.monotonic()

    async def follow(self) -> None:
        """Read the silences topic from the beginning, then keep reading."""
        topic = TopicPartition(self.worker.silences.get_topic_name(), 0)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.worker.settings.kafka.bootstrap_servers.split(","),
                                    enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=100)
        await consumer.start()
        try:
            consumer.assign([topic])
            await consumer.seek_to_beginning(topic)
            self._apply()
            while True:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        if record.value:
                            silence = Silence.from_dict(orjson.loads(record.value))
                            self.made[silence.id] = silence
                        else:
                            self.made.pop(record.key.decode(), None)
                            self._forgetting.discard(record.key.decode())
                        self.read_to = record.offset
                    self._apply()
                    self._progress.set()
                    self._progress = asyncio.Event()
                    await self._forget()
                if time.monotonic() - self._applied > _ENDED_EVERY:  # those that ended meanwhile
                    self._apply()
                    await self._forget()
        finally:
            await consumer.stop()

    async def _forget(self) -> None:
        """Tombstone the silences that ended more than `alerting.silence_retention` ago. Every worker may: the
        tombstones of one silence, however many, delete the one record."""
        ended = time.time() - self.worker.settings.alerting.silence_retention
        gone = [key for key, silence in self.made.items() if silence.until <= ended and key not in self._forgetting]
        self._forgetting.update(gone)
        await send_all([{"topic": self.worker.silences, "key": key.encode(), "value": None} for key in gone])

    async def _write(self, silence: Silence, *, action: str, who: str) -> None:
        """The audit entry, then the silence, then read back here; asyncio.TimeoutError when the broker has not
        taken both within `_WAIT` (the sends go on). Read back or not by then, the silence is written."""
        deadline = asyncio.get_running_loop().time() + _WAIT
        async with asyncio.timeout_at(deadline):
            offset = await asyncio.shield(self._send(silence, action=action, who=who))
        try:
            async with asyncio.timeout_at(deadline):
                while self.read_to < offset:  # read your own write
                    await self._progress.wait()
        except asyncio.TimeoutError:
            pass

    async def _send(self, silence: Silence, *, action: str, who: str) -> int:
        # keyed by team: one team's silence changes land on one partition, in order
        await send_all([{"topic": self.worker.audit, "key": silence.care_team.encode(), "value": orjson.dumps({
            "at": time.time(), "action": action, "by": who, "silence": silence.id, "care_team": silence.care_team,
            "subject": silence.subject, "until": silence.until})}])
        [(sent, _)] = await send_all([{"topic": self.worker.silences, "key": silence.id.encode(),
                                       "value": orjson.dumps(silence.to_dict())}])
        return sent.offset

    async def create(self, view: View, request: Any) -> Any:
        principal = self.tokens.authenticate(request.headers.get("Authorization"))
        if principal is None:
            return view.json({"error": "a valid bearer token is required"}, status=401)
        try:
            silence = await self.make(principal, orjson.loads(await request.read() or b"null"))
        except orjson.JSONDecodeError:
            return view.json({"error": "body: expected a JSON object"}, status=400)
        except ValueError as exc:
            return view.json({"error": str(exc)}, status=400)
        except asyncio.TimeoutError:
            return _unsent(view)
        return view.json(silence.to_dict(), status=201)

    async def make(self, principal: Principal, body: Any) -> Silence:
        """A silence for the principal's team, written and read back; ValueError names a bad field,
        asyncio.TimeoutError says the broker has not taken it yet."""
        silence = from_request(body, team=principal.team, who=principal.who, now=time.time())
        await self._write(silence, action="silence", who=principal.who)
        return silence

    async def list(self, view: View, request: Any) -> Any:
        principal = self.tokens.authenticate(request.headers.get("Authorization"))
        if principal is None:
            return view.json({"error": "a valid bearer token is required"}, status=401)
        now = time.time()
        mine = [s.to_dict() for s in [*self.configured, *self.made.values()]
                if s.until > now and s.care_team in (principal.team, None)]
        return view.json({"silences": sorted(mine, key=lambda s: s["until"])})

    async def expire(self, view: View, request: Any, silence_id: str) -> Any:
        principal = self.tokens.authenticate(request.headers.get("Authorization"))
        if principal is None:
            return view.json({"error": "a valid bearer token is required"}, status=401)
        silence = self.made.get(silence_id)
        if silence is None:
            configured = any(s.id == silence_id for s in self.configured)
            return view.json({"error": "silences from the config file end by editing it" if configured
                              else "no such silence"}, status=409 if configured else 404)
        if silence.care_team != principal.team:
            return view.json({"error": "the silence belongs to another care team"}, status=403)
        expired = silence.expired(now=time.time())
        try:
            await self._write(expired, action="unsilence", who=principal.who)
        except asyncio.TimeoutError:
            return _unsent(view)
        return view.json(expired.to_dict())


def _unsent(view: View) -> Any:
    return view.json({"error": _UNSENT}, status=503, headers={"Retry-After": "5"})


def install(worker: Worker, alerting: Alerting, tokens: Tokens) -> Silences:
    app = worker.app
    silences = Silences(worker=worker, alerting=alerting, tokens=tokens)

    @app.task
    async def follow() -> None:
        await silences.follow()

    @app.page("/v1/silences")
    class SilenceList(View):
        async def get(self, request):
            return await silences.list(self, request)

        async def post(self, request):
            return await silences.create(self, request)

    @app.page("/v1/silences/{silence_id}")
    class SilenceItem(View):
        async def delete(self, request, silence_id: str):
            return await silences.expire(self, request, silence_id)

    return silences
