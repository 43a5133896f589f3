"""The ingest agent: every record of carewatch.events to exactly one outcome, in batches.

Records come from the intake (`intake.py`: taken out of faust's fetches in
bulk) in batches of at most `worker.batch_max` events, gathered for at most
`worker.batch_wait` after the first, and go to the one code path
(`Pipeline.handle_batch`), which scores each batch with one call per model.
Then, in this order:

1. outputs: dead letters to carewatch.events.dlq byte for byte with the two
   headers of CONTRACT §1, a record per processed event on carewatch.risk,
   alerts on carewatch.alerts, handed to the producer; once the broker has
   them all,
2. state: each person's new state is written to the table's store (RocksDB)
   and to its changelog topic, and once the broker has those,
3. the batch's offsets may be committed (the agent commits every
   `broker_commit_interval`, and on a revocation).

The agent does not wait for 1 to finish before it takes the next batch (up to
`IN_FLIGHT` batches are on their way): the next batch reads the states the
batches on their way will store (`Unstored`), and each batch's step 2 waits
for its own outputs and for the batch before it. So state is never ahead of
outputs, nor the store of one batch ahead of the batch before it.

A crash before 2 redelivers the batch to a state that has not seen it:
outputs repeat with the same alert ids (at least once), nothing is lost.
A crash after 2 redelivers events the state has seen: they are duplicates,
and their outputs are already on the broker. A batch that fails is handled
again (a send that fails is retried inside), holding its partitions back
rather than losing an event; the watchdog notices if that never ends.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import weakref
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from faust.stores.base import SerializedStore
from faust.streams import _current_event

from ..pipeline import Outcome
from ..state import PersonState
from .continuity import from_the_start_if_uncommitted
from .intake import Intake
from .produce import hand_all, send_all

if TYPE_CHECKING:
    from ..app import Worker
    from .watchdog import Progress

__all__ = ["install"]

log = logging.getLogger(__name__)


_ERROR_HEADERS = ("carewatch-error", "carewatch-error-code")


#: people whose parsed state the agent keeps between batches (about 8 KB each with its bytes): the most recent
PARSED_STATES = 4_096


class ParsedStates:
    """Parsed states this agent wrote, each beside the bytes it wrote: a read whose stored bytes are the same
    takes the parsed one and skips the parse (6% of the worker's time in py-spy).

    A state is handed out once (taken out of here) because the pipeline changes it in place, and comes back
    with the bytes its batch serialized. Every read still compares with the bytes the table (or a batch on its
    way) holds, so a state the table got otherwise (restored from the changelog, written by another worker
    before a rebalance), or bytes of a batch never stored, are parsed, never taken from here.
    """

    def __init__(self, *, capacity: int = PARSED_STATES) -> None:
        self._capacity = capacity
        self._kept: dict[bytes, tuple[bytes, PersonState]] = {}  # oldest first

    def take(self, key: bytes, raw: bytes) -> PersonState | None:
        kept = self._kept.pop(key, None)
        return kept[1] if kept is not None and kept[0] == raw else None

    def keep(self, key: bytes, raw: bytes, state: PersonState) -> None:
        self._kept[key] = (raw, state)
        if len(self._kept) > self._capacity:
            del self._kept[next(iter(self._kept))]


#: batches whose outputs were handed to the producer and whose states are not stored yet, at most
IN_FLIGHT = 3


class Unstored:
    """The serialized states of batches on their way to the store, newest per person: what the table will hold.

    Only for the partitions of one generation of the intake: a revocation leaves these to the next owner.
    """

    def __init__(self) -> None:
        self.generation = 0
        self._states: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self._states.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self._states[key] = value

    def stored(self, key: bytes, value: bytes) -> None:
        """The table holds `value` now: forget it, unless a later batch has a newer one on its way."""
        if self._states.get(key) is value:
            del self._states[key]

    def reset(self, generation: int) -> None:
        self.generation = generation
        self._states.clear()


class InOrder:
    """Batches on their way: each one's finish runs once its outputs are on the broker and the finish of the
    batch before it has run, so that state is never ahead of outputs nor one batch's state ahead of another's."""

    def __init__(self, *, most: int) -> None:
        self._most = most
        self._tasks: deque[asyncio.Task] = deque()

    async def add(self, outputs: Awaitable[Any], finish: Callable[[], Awaitable[None]]) -> None:
        """Chain a batch's finish; returns at once, or once fewer than `most` batches are on their way."""
        while self._tasks and self._tasks[0].done():
            self._tasks.popleft()
        self._tasks.append(asyncio.create_task(self._finish(outputs, self._tasks[-1] if self._tasks else None,
                                                            finish)))
        if len(self._tasks) >= self._most:
            await asyncio.wait([self._tasks[0]])

    @staticmethod
    async def _finish(outputs: Awaitable[Any], before: asyncio.Task | None,
                      finish: Callable[[], Awaitable[None]]) -> None:
        await outputs
        if before is not None:
            await before  # one cancelled at a stop (never stored) stops those built on it too
        await finish()


class StagedStates:
    """The pipeline's StateStore for one batch: reads the table (or a batch on its way), holds writes."""

    def __init__(self, read: Callable[[bytes], bytes | None], events: list, parsed: ParsedStates,
                 unstored: Unstored | None = None) -> None:
        self._read = read
        self._parsed = parsed
        self._unstored = unstored
        #: an event keyed by each subject: its partition is where the subject's state lives
        self._by_key = {event.message.key: event for event in events}
        self.staged: dict[str, PersonState] = {}

    def get(self, subject: str) -> PersonState | None:
        key = subject.encode()
        raw = self._unstored.get(key) if self._unstored is not None else None
        if raw is None:
            event = self._by_key.get(key)
            # With the subject's own event current, faust reads that one partition; with none (a record
            # keyed otherwise), it looks the key up in every assigned partition.
            token = _current_event.set(weakref.ref(event) if event is not None else None)
            try:
                raw = self._read(key)
            finally:
                _current_event.reset(token)
        if raw is None:
            return None
        state = self._parsed.take(key, raw)
        return state if state is not None else PersonState.loads(raw)

    def put(self, subject: str, state: PersonState) -> None:
        self.staged[subject] = state


def _raw(table: Any) -> tuple[Callable[[bytes], bytes | None], Callable[[bytes, bytes], None]]:
    """Read and write the table's store in raw bytes: RocksDB's own get and put for the current event's
    partition (the table's mapping API costs two lookups and two codec calls a read); other stores as mappings."""
    store = table.data
    if isinstance(store, SerializedStore):
        return store._get, store._set
    return store.get, store.__setitem__


def install(worker: Worker, progress: Progress) -> Any:
    settings = worker.settings.worker
    parsed, unstored = ParsedStates(), Unstored()
    intake = Intake(topic=worker.events.get_topic_name(), limit=settings.poll_records,
                    revoke_wait=settings.session_timeout / 2)
    # before faust's fetcher runs: no events record may take faust's path, where no agent would handle it
    intake.attach(worker.app.consumer)
    from_the_start_if_uncommitted(worker.app.consumer, [intake.topic])  # what the intake dropped is read again

    @worker.app.on_partitions_revoked.connect
    async def revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:  # noqa: ARG001 - faust's signal
        await intake.revoked(revoked)

    @worker.app.timer(worker.app.conf.broker_commit_interval, name="carewatch.ingest.commit")
    async def commit() -> None:
        await intake.commit()

    @worker.app.agent(worker.events, name="carewatch.ingest")
    async def ingest(stream):  # noqa: ARG001 - the agent holds the topic in faust's group; the intake reads it
        on_their_way = InOrder(most=IN_FLIGHT)
        while True:
            batch = await intake.take(most=settings.batch_max, wait=settings.batch_wait)
            if not batch:
                continue
            generation = intake.generation
            if unstored.generation != generation:
                unstored.reset(generation)
            taken = time.time()
            for read in batch:
                progress.on_read(read.message.partition, read.message.offset)
            worker.metrics.batch_events.observe(len(batch))
            worker.metrics.batch_seconds.labels("waited").observe(
                max(0.0, taken - min(read.message.timestamp or taken * 1000 for read in batch) / 1000))
            outputs, states, handed = await _until_done(
                "handling a batch", lambda: _handle(worker, batch, parsed, unstored))
            outputs.add_done_callback(lambda _, handed=handed: worker.metrics.batch_seconds.labels(
                "delivered").observe(time.perf_counter() - handed))
            await on_their_way.add(outputs, lambda batch=batch, generation=generation, states=states: finish(
                batch, generation, states))

    async def finish(batch: list, generation: int, states: list) -> None:
        """The batch's outputs are on the broker and the batch before it is stored: its states, then offsets."""
        # after a revocation, another worker handles the batch again: its states are not this worker's to store
        if generation == intake.generation:
            await _until_done("storing a batch", lambda: _store(worker, states, unstored))
        intake.handled(batch, generation=generation)
        progress.on_handled()

    return ingest


async def _handle(worker: Worker, events: list, parsed: ParsedStates, unstored: Unstored) -> tuple:
    """Process a batch and hand its outputs to the producer; its states go to `unstored` until stored.

    Returns the future of the outputs' acks, the states to store as (key, bytes, event), and when they were handed
    (perf_counter).
    """
    pipeline, metrics = worker.pipeline, worker.metrics
    started = time.perf_counter()
    states = StagedStates(_raw(worker.people)[0], events, parsed, unstored)
    records = [(event.message.value or b"", _content_type(event.message.headers)) for event in events]
    results = pipeline.handle_batch(records, states=states, now=time.time())
    pending = []
    last_event_of: dict[str, Any] = {}
    now = time.time()
    outcomes: Counter[tuple[str, str]] = Counter()
    for event, result in zip(events, results):
        outcomes[result.event.stream if result.event else "invalid", result.outcome.value] += 1
        message = event.message
        if result.outcome is Outcome.DEAD_LETTERED:
            error = result.error
            kept = [(k, v) for k, v in message.headers or () if k.lower() not in _ERROR_HEADERS]
            pending.append(dict(topic=worker.dlq, key=message.key, value=message.value, headers=kept + [
                ("carewatch-error", str(error).encode("ascii", "replace")),
                ("carewatch-error-code", error.code.encode("ascii")),
            ]))
            metrics.dead_letters.labels(error.code).inc()
        if result.event is not None:
            last_event_of[result.event.subject] = event
        if result.outcome is Outcome.PROCESSED:
            subject = result.event.subject.encode()
            if message.key != subject:
                metrics.key_mismatch.inc()
            pending.append(dict(topic=worker.risk, key=subject, value=orjson.dumps(result.record)))
            metrics.event_lag.observe(max(0.0, now - result.event.timestamp))
            for alert in result.alerts:
                pending.append(dict(topic=worker.alerts, key=subject, value=orjson.dumps(alert.to_dict())))
                metrics.alerts.labels(alert.care_team, alert.severity, alert.reasons[0].code).inc()
    for labels, count in outcomes.items():  # once a batch: a labelled counter costs a lookup a call
        metrics.events.labels(*labels).inc(count)
    metrics.risk.inc(sum(count for (_, outcome), count in outcomes.items() if outcome == Outcome.PROCESSED.value))
    # Each state lives in the partition of its subject's own event, as if that were processed alone.
    serialized = [(subject.encode(), state.dumps(), last_event_of[subject], state)
                  for subject, state in states.staged.items()]
    handed = time.perf_counter()
    metrics.batch_seconds.labels("processed").observe(handed - started)
    outputs = await hand_all(pending)
    for key, value, _, state in serialized:
        unstored.put(key, value)
        parsed.keep(key, value, state)
    return outputs, [(key, value, event) for key, value, event, _ in serialized], handed


async def _store(worker: Worker, states: list, unstored: Unstored) -> None:
    """A batch's states in the store and their changelog records on the broker; the store told where its
    changelog stands."""
    started = time.perf_counter()
    write = _raw(worker.people)[1]
    changelog = []
    for key, value, event in states:
        token = _current_event.set(weakref.ref(event))
        try:
            write(key, value)
        finally:
            _current_event.reset(token)
        unstored.stored(key, value)
        changelog.append(dict(topic=worker.people.changelog_topic, key=key, value=value,
                              partition=event.message.partition))
        worker.metrics.state_bytes.observe(len(value))
    for sent, count in await send_all(changelog):
        # what faust does for each record it sends itself: a restore reads the changelog from there on
        worker.people.data.set_persisted_offset(sent.topic_partition, sent.offset + count - 1)
    worker.metrics.batch_seconds.labels("stored").observe(time.perf_counter() - started)


async def _until_done(what: str, attempt: Callable[[], Awaitable[Any]]) -> Any:
    """Try again until it works: a batch given up would be lost, one that never works is the watchdog's."""
    for tries in itertools.count():
        try:
            return await attempt()
        except Exception as exc:  # the type only: a message could quote an event
            log.error("%s failed (%s); again", what, type(exc).__name__)
            await asyncio.sleep(min(5.0, 0.1 * 2**tries))
    raise AssertionError("unreachable")


def _content_type(headers: Any) -> str | None:
    for key, value in headers or ():
        if key.lower() == "content-type":
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return None
