"""The alerting agent: feeds alerts/ (routing, delivery, escalation, acknowledgement) and keeps its books.

Everything that changes an alert in care arrives as a record keyed by the
person, on carewatch.alerts (a new alert) or carewatch.alerts.commands (a
human action from the ack API, a delivery's outcome, a clock tick), and is
applied by this one agent to the person's book in the `alert-books` table
(RocksDB and its changelog). So one writer decides per person, the book
survives restarts and moves with its partition, and the ack API
(actions.py) answers from what was applied, not from a guess.

The agent takes what has queued up for it (up to 500 records), having waited
`alerting.batch_wait` after the first for more, as one batch:
the dispatcher decides each record in order against its person's book
(alerts/dispatch.py), the batch's audit entries are sent and acknowledged
by the broker, each book is written once, then the sends go to the outbox.
(A crash between the audit and the books repeats the audit entries on
redelivery; the other order lost them: the chaos suite saw it.) A send is `pending` in the book until its outcome
comes back as a command, so after a crash or a rebalance the worker sends
it again under the same delivery id (at least once, never lost).

A timer looks for escalations that are due in the partitions this worker
holds and sends a tick for each such person; after every change of
assignment it rebuilds its index (alert id to person, next deadlines, open
alerts) from the table and submits everything pending again.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson

from alerts.ack import Principal
from alerts.alert import checked
from alerts.channels import build
from alerts.delivery import Attempt, Retrier
from alerts.dispatch import Book, Dispatcher, Effects, Send
from alerts.escalation import DEADLINES
from alerts.exceptions import DeliveryError
from alerts.metrics import AlertingMetrics
from alerts.outbox import Outbox
from alerts.silences import from_config

from .books import Books
from .continuity import install as continuity_for
from .held import Held
from .produce import Gathered, send_all
from .store import Parsed, send_changelog, write_all
from .ticks import Ticks

if TYPE_CHECKING:
    from ..app import Worker
    from .continuity import Continuity
    from .watchdog import Progress

__all__ = ["Alerting", "install"]

log = logging.getLogger(__name__)

#: seconds a batch runs at most before it lets others run (a record or book takes 0.1 to 1 ms). Not less: in a
#: backlog every turn given lets an ingest batch of up to 500 events run, and routing fell behind ingest.
_TURN = 0.05
#: people whose book the agent keeps parsed between batches (an alert and its delivery each read the book; the
#: parse was 5% of the worker's time at 1,000 events/s in py-spy): the most recent
PARSED_BOOKS = 1_024
#: the largest alert taken into care (the pipeline's are about 1 KB): each case is one record of the books'
#: changelog, which takes 1 MB at most, and a record the broker refuses would be sent again for good
MAX_ALERT_BYTES = 64 * 1024


class Alerting:
    """What the agent, its timer and the ack API share in one worker."""

    def __init__(self, *, worker: Worker) -> None:
        settings = worker.settings
        self.worker = worker
        channels = {name: build(name, config.model_dump()) for name, config in settings.channels.items()}
        self.dispatcher = Dispatcher(config=settings, per_alert={n: c.per_alert for n, c in channels.items()},
                                     silences=from_config(settings.silences))
        self.metrics = AlertingMetrics(registry=worker.registry,
                                       channels={n: c.type for n, c in settings.channels.items()})
        a = settings.alerting
        self.outbox = Outbox(channels=channels, on_done=self._done, on_attempt=self._attempt,
                             retrier=Retrier(attempts=a.retry_attempts, budget=a.retry_budget, base=a.retry_base,
                                             cap=a.retry_cap))
        #: the outbox's reports (attempts, outcomes) of all deliveries, sent together
        self.outcomes = Gathered()
        #: what the agent knows of the books held here, in memory
        self.held = Held(metrics=self.metrics, teams=settings.care_teams)
        self.ticking = Ticks()
        self.waiting: dict[str, asyncio.Future] = {}
        #: queues of the console's live pages: each gets the care teams whose alerts changed
        self.watchers: set[asyncio.Queue] = set()
        self._scanned: frozenset | None = None
        self.books = Books(table=worker.books, parsed=Parsed(capacity=PARSED_BOOKS))
        #: the agent's check that no record is passed over (set at install); the watchdog asks it to read again
        self.continuity: Continuity | None = None

    # -- the agent ------------------------------------------------------------------------------

    async def handle(self, events: list[Any]) -> None:
        """Apply records, in order, to their people's books: one audit send for them all, one store write for the
        books.

        Each record is decided against its book in memory first and nothing is written until all are, so a
        record that cannot be handled leaves no trace and the batch can go again one record at a time.
        """
        now = time.time()
        books: dict[bytes, Book] = {}
        #: per book, its last record: the book lives in that record's partition (the person's)
        last: dict[bytes, Any] = {}
        effects = Effects()
        then: list[Callable[[], None]] = []  # what follows from a record once its book is written
        turn = time.perf_counter()
        for event in events:
            if time.perf_counter() - turn > _TURN:  # a long batch lets the ingest agent's batches through
                await asyncio.sleep(0)
                turn = time.perf_counter()
            key = event.message.key or b""
            book = books.get(key)
            if book is None:
                book = books[key] = self.books.read(key, event)
            last[key] = event
            decided = self._decide(book, key.decode(), event.message, now=now, then=then)
            effects.audit += decided.audit
            effects.sends += decided.sends
        # The audit first: a book written before its decisions are on the audit topic would, after a crash
        # between the two, take the redelivered alert for one already in care and never audit its routing.
        await self._audit(effects.audit)
        changelog = []
        heads = {}
        turn = time.perf_counter()
        for key, book in books.items():
            if time.perf_counter() - turn > _TURN:
                await asyncio.sleep(0)
                turn = time.perf_counter()
            heads[key], records = self.books.changes(key, book)
            partition = last[key].message.partition  # the person's
            changelog += [(record, value, partition) for record, value in records]
        write_all(self.worker.books, changelog)
        for key, book in books.items():
            self.held.track(key.decode(), book, changed=book.touched | book.dropped)
            self.books.kept(key, heads[key], book)
        await send_changelog(self.worker.books, changelog)
        self._tell_watchers(books.values())
        for step in then:
            step()
        for send in effects.sends:
            self.outbox.submit(send)

    def _decide(self, book: Book, subject: str, message: Any, *, now: float,
                then: list[Callable[[], None]]) -> Effects:
        if message.topic == self.worker.alerts.get_topic_name():
            if len(message.value) > MAX_ALERT_BYTES:
                raise ValueError(f"value: {len(message.value)} bytes is over the limit of {MAX_ALERT_BYTES} bytes")
            return self.dispatcher.on_alert(book, checked(orjson.loads(message.value)), now=now)
        command = orjson.loads(message.value)
        kind = command["type"]
        if kind == "action":
            principal = Principal(command["team"], command.get("member"))
            code, effects = self.dispatcher.on_action(book, command["alert_id"], command["action"], principal,
                                                      now=now, note=command.get("note"))
            case = book.cases.get(command["alert_id"])
            answered = (code, case["alert"]["status"] if case else "")
            waited = [(entry["severity"], max(0.0, now - book.cases[entry["alert_id"]]["raised"]))
                      for entry in effects.audit
                      if entry.get("status_from") == "firing" and entry.get("status_to") != "firing"]
            then.append(lambda: self._answer(command.get("id", ""), answered, waited))
        elif kind == "tick":
            then.append(lambda: self.ticking.answered(subject))
            effects = self.dispatcher.on_tick(book, now=now)
        elif kind == "delivered":
            self.dispatcher.on_delivered(book, command["alert_id"], command["key"], channel=command["channel"])
            then.append(lambda: self.outbox.settle(command["key"]))
            effects = Effects()
        else:
            raise ValueError(f"type: unknown command {kind!r}")
        return effects

    def _answer(self, command_id: str, answered: tuple[int, str], waited: list[tuple[str, float]]) -> None:
        for severity, seconds in waited:
            self.metrics.ack_seconds.labels(severity).observe(seconds)
        if (future := self.waiting.get(command_id)) and not future.done():
            future.set_result(answered)

    def _tell_watchers(self, books: Iterable[Book]) -> None:
        teams = frozenset(case["alert"]["care_team"] for book in books for case in book.cases.values())
        for queue in self.watchers:
            if not queue.full():  # a page that is behind refreshes once anyway
                queue.put_nowait(teams)

    async def _audit(self, entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            if entry.get("action") == "route":
                self.metrics.decisions.labels(entry["severity"], entry["outcome"]).inc()
            elif entry.get("action") == "escalate":
                self.metrics.escalations.labels(entry["severity"]).inc()
        await send_all([{"topic": self.worker.audit, "key": (e.get("subject") or "").encode() or None,
                         "value": orjson.dumps(e)} for e in entries])

    # -- the outbox's reports -------------------------------------------------------------------

    def _attempt(self, attempt: Attempt) -> None:
        result = "ok" if attempt.error is None else type(attempt.error).__name__
        self.metrics.attempts.labels(attempt.channel, result).inc()
        if attempt.attempt > 1:
            self.metrics.retries.labels(attempt.channel).inc()
        entry = {"at": time.time(), "action": "deliver", "by": "carewatch", "channel": attempt.channel,
                 "delivery_id": attempt.delivery_id, "attempt": attempt.attempt, "seconds": round(attempt.seconds, 4),
                 "outcome": "ok" if attempt.error is None else str(attempt.error)}
        asyncio.ensure_future(self.outcomes.send([{"topic": self.worker.audit, "key": None,
                                                   "value": orjson.dumps(entry)}]))

    async def _done(self, sends: list[Send], used: str | None, errors: dict[str, DeliveryError]) -> None:
        first = sends[0]
        result = "delivered" if used == first.channel else "fallback" if used else "dead_lettered"
        self.metrics.deliveries.labels(first.channel, result).inc()
        messages = []
        for send in sends:
            alert = send.notice.alerts[0]
            subject = alert["subject"].encode()
            for channel, error in errors.items():  # every channel that gave up, even when the fallback took it
                messages.append({"topic": self.worker.alerts_dlq, "key": subject, "value": orjson.dumps(alert),
                                 "headers": [("carewatch-error", str(error).encode("ascii", "replace")),
                                             ("carewatch-error-code", type(error).__name__.encode()),
                                             ("carewatch-channel", channel.encode()),
                                             ("carewatch-delivered-by", (used or "").encode()),
                                             ("carewatch-delivery-id", send.notice.delivery_id.encode())]})
            messages.append({"topic": self.worker.commands, "key": subject, "value": orjson.dumps({
                "type": "delivered", "alert_id": alert["alert_id"], "key": send.key, "channel": used})})
            messages.append({"topic": self.worker.audit, "key": subject, "value": orjson.dumps({
                "at": time.time(), "action": "delivered", "by": "carewatch", "alert_id": alert["alert_id"],
                "subject": alert["subject"], "channel": send.channel, "via": used, "outcome": result,
                "delivery_id": send.notice.delivery_id, "errors": {c: str(e) for c, e in errors.items()}})})
        await self.outcomes.send(messages)

    # -- the clock ------------------------------------------------------------------------------

    async def tick(self) -> None:
        from ..app import readiness

        app = self.worker.app
        if not readiness(app)[0]:
            return
        assignment = frozenset(app.consumer.assignment())
        if assignment != self._scanned:
            self._scan()
            self._scanned = assignment
        now = time.time()
        overdue = self.held.overdue(now=now)
        for severity in DEADLINES:
            self.metrics.overdue.labels(severity).set(overdue[severity])
        due = self.ticking.due(self.held.due, now=now)
        await send_all([{"topic": self.worker.commands, "key": s.encode(), "value": b'{"type":"tick"}'} for s in due])

    def _scan(self) -> None:
        """Rebuild the index from the books this worker holds now, and send what is pending again."""
        self.held.clear()
        self.ticking.clear()  # a tick sent before may have been answered by the worker that held the person then
        for subject, book in self.books.everyone():
            self.held.track(subject, book)
            for send in book.pending():
                self.outbox.submit(send)

    # -- what the ack API asks ------------------------------------------------------------------

    def case(self, alert_id: str) -> dict[str, Any] | None:
        """An alert in care in a partition this worker holds, as its book keeps it; None if not here."""
        subject = self.held.subject_of.get(alert_id)
        if subject is None:
            return None
        return self.books.case(subject, alert_id)

    async def ask(self, alert_id: str, command: dict[str, Any], *, wait: float) -> tuple[int, str]:
        """Send an action on an alert held here as a command, and wait until this agent has applied it: its
        answer (code, the alert's status). asyncio.TimeoutError when it has not within `wait` seconds, the send
        included: in a broker outage the person is told to ask again, while the send goes on trying."""
        command_id = uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        self.waiting[command_id] = future
        try:
            async with asyncio.timeout(wait):
                await asyncio.shield(send_all([{"topic": self.worker.commands, "key": self.held.subject_of[alert_id].encode(),
                                                "value": orjson.dumps({**command, "id": command_id})}]))
                return await future
        finally:
            self.waiting.pop(command_id, None)


#: errors that mean the record itself is wrong: it goes to carewatch.alerts.dlq with the error
_BAD_RECORD = (ValueError, KeyError, TypeError)
_BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)
#: records applied together at most
_BATCH_MAX = 500


async def _apply(alerting: Alerting, events: list[Any]) -> None:
    """Apply a batch; a bad record in it sends the batch again one record at a time, to dead-letter just that one."""
    try:
        await _handle_until_done(alerting, events)
    except _BAD_RECORD as exc:
        if len(events) > 1:
            for event in events:
                await _apply(alerting, [event])
            return
        # no retry can help: keep the record, with the error, and go on
        message = events[0].message
        alerting.metrics.errors.labels("dead_lettered").inc()
        log.error("alerting record on %s could not be handled: %s", message.topic, type(exc).__name__)
        await send_all([{"topic": alerting.worker.alerts_dlq, "key": message.key, "value": message.value,
                         "headers": [("carewatch-error", f"{type(exc).__name__}: {exc}"[:200].encode("ascii",
                                                                                                   "replace")),
                                     ("carewatch-error-code", b"bad_record")]}])


async def _handle_until_done(alerting: Alerting, events: list[Any]) -> None:
    """Apply records; anything but a bad record is retried, holding the partitions: an alert is never dropped."""
    for attempt in itertools.count():
        try:
            return await alerting.handle(events)
        except asyncio.CancelledError:
            raise
        except _BAD_RECORD:
            raise
        except Exception as exc:
            alerting.metrics.errors.labels("retried").inc()
            delay = _BACKOFF[min(attempt, len(_BACKOFF) - 1)]
            log.error("%d alerting records failed (%s); retrying in %.1f s", len(events), type(exc).__name__,
                      delay)
            await asyncio.sleep(delay)


def install(worker: Worker, progress: Progress) -> Alerting:
    app = worker.app
    alerting = Alerting(worker=worker)
    continuity = alerting.continuity = continuity_for(
        worker, agent="alerting", topics=[worker.alerts.get_topic_name(), worker.commands.get_topic_name()])
    source = app.topic(worker.alerts.get_topic_name(), worker.commands.get_topic_name(), key_type=bytes,
                       value_type=bytes, key_serializer="raw", value_serializer="raw")

    @app.agent(source, name="carewatch.alerting")
    async def agent(stream):
        await alerting.outbox.start()
        manual = stream.noack()  # acknowledged once handled, and never a record passed over
        waiting: deque = deque()
        arrived, room = asyncio.Event(), asyncio.Event()

        async def read() -> None:
            """faust's stream into `waiting`. Its reads block in a stop or a rebalance; then the agent still
            applies and acknowledges what is waiting, as faust waits for before it goes on."""
            try:
                async for event in manual.events():
                    waiting.append(event)
                    arrived.set()
                    while len(waiting) >= _BATCH_MAX:
                        room.clear()
                        await room.wait()
            finally:
                arrived.set()

        reader = asyncio.ensure_future(read())
        gather = worker.settings.alerting.batch_wait
        try:
            while True:
                while not waiting:
                    if reader.done():
                        return reader.result()  # the stream ended (or its error, raised here)
                    arrived.clear()
                    await arrived.wait()
                if gather and len(waiting) < _BATCH_MAX:
                    await asyncio.sleep(gather)  # what comes meanwhile goes with it
                # What waits is applied together: one record at a time, each waiting for its audit entries to be
                # acknowledged, fell behind 20 s in 30 s at 1,000 events/s (about 160 alerts a second).
                batch = [waiting.popleft() for _ in range(min(len(waiting), _BATCH_MAX))]
                room.set()
                admitted = []
                for event in batch:
                    if await continuity.admit(event.message):  # False: past a gap, it comes again after the seek
                        progress.on_read(event.message.tp, event.message.offset)
                        admitted.append(event)
                if not admitted:
                    continue
                alerting.metrics.batch.observe(len(admitted))
                await _apply(alerting, admitted)
                now = time.time()
                for event in admitted:
                    alerting.metrics.wait_seconds.observe(max(0.0, now - event.message.timestamp))
                    await manual.ack(event)
                progress.on_handled()
        finally:
            reader.cancel()
            await alerting.outbox.stop()
            await continuity.probe.stop()

    @app.timer(worker.settings.alerting.tick, name="carewatch.alerting.tick")
    async def tick() -> None:
        await alerting.tick()

    return alerting
