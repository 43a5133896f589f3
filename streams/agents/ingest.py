"""The ingest agent: every record of carewatch.events to exactly one outcome, in batches.

Records come from the intake (`intake.py`: taken out of faust's fetches in
bulk) in batches of at most `worker.batch_max` events, gathered for at most
`worker.batch_wait` after the first, and go to the one code path
(`Pipeline.handle_batch`, which scores each batch with one call per model)
in the pipeline's own process (`offload.py`), with each person's state as
last decided. Then, batch after batch in the order taken:

1. outputs: dead letters to carewatch.events.dlq byte for byte with the two
   headers of CONTRACT §1, a record per processed event on carewatch.risk,
   alerts on carewatch.alerts; the agent waits until the broker has them;
2. state: each person's new state waits, at most `worker.store_interval`, and
   is then written to the table's store (RocksDB) and to its changelog topic,
   once for all the batches that changed it meanwhile (Kafka Streams' record
   cache: at full speed a person's state changed in several batches a
   second); the agent waits until the broker has them;
3. the batches' offsets may be committed (the agent commits every
   `broker_commit_interval`, and on a revocation, which stores first).

Meanwhile the pipeline's process decides the next batches (up to two
ahead) from the states decided before them, which the agent holds until
they are in the store, and the most recent people's after that, so that
their next events need no read of the store. A rebalance forgets them all:
the partitions' next owner decides again from what was stored.

A crash between 1 and 2 redelivers the batches to a state that has not seen
them: outputs repeat with the same alert ids (at least once), nothing is lost.
A crash after 2 redelivers events the state has seen: they are duplicates,
and their outputs are already on the broker. A step that fails is tried
again, holding its partitions back rather than losing an event; the
watchdog notices if that never ends.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..pipeline import Outcome
from .continuity import from_the_start_if_uncommitted
from .intake import Intake
from .offload import Handled, Offload
from .produce import send_all
from .store import in_partition_of, raw, send_changelog, write_all

if TYPE_CHECKING:
    from ..app import Worker
    from .watchdog import Progress

__all__ = ["install"]

log = logging.getLogger(__name__)


_ERROR_HEADERS = ("carewatch-error", "carewatch-error-code")
#: batches decided ahead of the one being written
_AHEAD = 2
#: people whose state as last written the agent keeps (about 1 KB each), to decide their next events without a read
#: of the store: the reads were 5% of the worker's main thread at full speed in py-spy
KEPT_STATES = 8_192
_UNKNOWN: Any = object()
#: the most people whose new states wait for the next store (about 1 KB each): past it they are stored at once
STORE_PEOPLE = 8_192
#: people's states written and sent at a time (about 1 KB each)
STORE_PART = 200
#: a wake-up for the writer: store what waits now (a revocation or a stop waits for it)
_STORE_NOW: Any = object()


def install(worker: Worker, progress: Progress) -> Any:
    settings = worker.settings.worker
    offload = Offload(settings=worker.settings)
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
        await _until_done("starting the pipeline's process", offload.start)
        #: states as last decided: the next batches are decided from them
        latest = _Decided()
        #: batches decided, waiting to be written, in order (None: no more): the pipeline's process decides the
        #: next ones meanwhile. One batch's outputs and states at a time, so that a person's records stay in order.
        decided: asyncio.Queue = asyncio.Queue()
        intake.on_finishing = lambda: decided.put_nowait(_STORE_NOW)
        ahead = asyncio.Semaphore(_AHEAD)
        writer = asyncio.create_task(write_in_turn(decided, ahead, latest))
        writer.add_done_callback(_ended)
        try:
            while True:
                batch = await intake.take(most=settings.batch_max, wait=settings.batch_wait)
                if not batch:
                    continue
                generation = intake.generation
                taken = time.time()
                for read in batch:
                    progress.on_read(read.message.partition, read.message.offset)
                worker.metrics.batch_events.observe(len(batch))
                worker.metrics.batch_seconds.labels("waited").observe(
                    max(0.0, taken - min(read.message.timestamp or taken * 1000 for read in batch) / 1000))
                started = time.perf_counter()
                states = latest.of(generation)
                handled = await _until_done("handling a batch", lambda: _decide(worker, offload, batch, states))
                worker.metrics.batch_seconds.labels("processed").observe(time.perf_counter() - started)
                states.update(handled.states)
                await ahead.acquire()
                decided.put_nowait((batch, generation, handled))
        finally:
            decided.put_nowait(None)  # what was decided is still written: a stop waits for the batches in hand
            offload.stop()

    async def write_in_turn(decided: asyncio.Queue, ahead: asyncio.Semaphore, latest: _Decided) -> None:
        waiting = _Unstored()
        storing: asyncio.Task | None = None
        while True:
            left = waiting.left(settings.store_interval)
            try:
                item = await (decided.get() if left is None else asyncio.wait_for(decided.get(), left))
            except asyncio.TimeoutError:
                item = _STORE_NOW
            if item is None:
                break
            if item is not _STORE_NOW:
                batch, generation, handled = item
                pending, states = _outputs(worker, batch, handled)
                started = time.perf_counter()
                await _until_done("delivering a batch's outputs", lambda: send_all(pending))
                delivered = time.perf_counter()
                worker.metrics.batch_seconds.labels("delivered").observe(delivered - started)
                if waiting.batches and waiting.generation != generation:  # taken before a revocation gave up
                    storing = await store(waiting, storing, latest)
                waiting.add(batch, generation, states, delivered)
                ahead.release()
            if waiting.batches and (item is _STORE_NOW or intake.finishing or len(waiting.states) >= STORE_PEOPLE
                                    or waiting.left(settings.store_interval) == 0):
                storing = await store(waiting, storing, latest)
        if waiting.batches:
            storing = await store(waiting, storing, latest)
        if storing is not None:
            await storing

    async def store(waiting: _Unstored, storing: asyncio.Task | None, latest: _Decided) -> asyncio.Task:
        """Store what waits once the store before is on the broker (so that a person's changelog records stay in
        order); the next batches' outputs go meanwhile."""
        batches, generation, states = waiting.take()
        if storing is not None:
            await storing
        return asyncio.create_task(stored(batches, generation, states, latest))

    async def stored(batches: list[tuple[list, float]], generation: int, states: dict[bytes, tuple[bytes, int]],
                     latest: _Decided) -> None:
        changelog = [(key, value, partition) for key, (value, partition) in states.items()]
        # A part at a time: a second's states in one write and one request held the next batches' outputs (and
        # their alerts) behind them, up to 110 ms at 1,000 events/s.
        for start in range(0, len(changelog), STORE_PART):
            if generation != intake.generation:  # a rebalance took the partitions: their next owner goes again
                break
            part = changelog[start:start + STORE_PART]
            _store(worker, part, latest)
            await _until_done("storing people's changelog", lambda: send_changelog(worker.people, part))
        now = time.perf_counter()
        for batch, delivered in batches:
            worker.metrics.batch_seconds.labels("stored").observe(now - delivered)
            intake.handled(batch, generation=generation)
        progress.on_handled()

    return ingest


def _ended(writer: asyncio.Task) -> None:
    if not writer.cancelled() and writer.exception() is not None:  # the type only: a message could quote an event
        log.error("the ingest writer stopped (%s): batches are no longer written", type(writer.exception()).__name__)


class _Unstored:
    """Batches delivered whose people's new states wait for the next store, and those states, the latest of each
    person (value, partition)."""

    def __init__(self) -> None:
        self.batches: list[tuple[list, float]] = []  # (batch, when its outputs were delivered)
        self.states: dict[bytes, tuple[bytes, int]] = {}
        #: the intake's generation of the batches (one at a time: what waits is stored before a later one's come)
        self.generation = -1
        self._since = 0.0

    def add(self, batch: list, generation: int, states: list[tuple[bytes, bytes, int]], delivered: float) -> None:
        if not self.batches:
            self._since = time.monotonic()
        self.batches.append((batch, delivered))
        self.generation = generation
        for key, value, partition in states:
            self.states[key] = (value, partition)

    def left(self, interval: float) -> float | None:
        """Seconds until what waits is due to be stored (None: nothing waits)."""
        return max(0.0, self._since + interval - time.monotonic()) if self.batches else None

    def take(self) -> tuple[list[tuple[list, float]], int, dict[bytes, tuple[bytes, int]]]:
        taken = self.batches, self.generation, self.states
        self.batches, self.states = [], {}
        return taken


class _Decided:
    """Each person's state as last decided in this generation: the next batches are decided from it, not from the
    store. What is not yet written is all kept; of what is written, the most recent `KEPT_STATES` people (the
    others are read from the store, where they are). All is forgotten on a rebalance (a new generation): the store
    may then hold what another worker wrote, restored from the changelog."""

    def __init__(self) -> None:
        self._unwritten: dict[bytes, bytes] = {}
        self._written: OrderedDict[bytes, bytes] = OrderedDict()
        self._generation = -1

    def of(self, generation: int) -> _Decided:
        if generation != self._generation:
            self._unwritten, self._written = {}, OrderedDict()
            self._generation = generation
        return self

    def get(self, key: bytes) -> Any:
        """The person's state as last decided here (bytes); _UNKNOWN if it must be read from the store."""
        return self._unwritten.get(key, self._written.get(key, _UNKNOWN))

    def update(self, states: dict[bytes, bytes]) -> None:
        self._unwritten.update(states)

    def written(self, key: bytes, value: bytes) -> None:
        if self._unwritten.get(key) is value:  # a later batch's value stays until that batch is written
            del self._unwritten[key]
        self._written[key] = value
        self._written.move_to_end(key)
        if len(self._written) > KEPT_STATES:
            self._written.popitem(last=False)


async def _decide(worker: Worker, offload: Offload, events: list, decided: _Decided) -> Handled:
    """A batch through the pipeline's process, each person's state as last decided (here, or in the store)."""
    read, _ = raw(worker.people)
    records = [(event.message.value or b"", _content_type(event.message.headers)) for event in events]
    stored: dict[bytes, bytes | None] = {}
    for key, event in {event.message.key: event for event in events if event.message.key}.items():
        state = decided.get(key)  # else in the partition of the subject's own event
        stored[key] = state if state is not _UNKNOWN else in_partition_of(event, read, key)
    handled = await offload.handle(records, stored, time.time())
    if handled.missing:  # records keyed otherwise than by their subject: those states, from any partition held
        for key in handled.missing:
            state = decided.get(key)
            stored[key] = state if state is not _UNKNOWN else in_partition_of(None, read, key)
        handled = await offload.handle(records, stored, time.time())
    for model, rows, seconds in handled.scored:
        worker.metrics.observe_scoring(model, rows, seconds)
    return handled


def _outputs(worker: Worker, events: list, handled: Handled) -> tuple[list, list]:
    """What goes on the topics for a batch, and (key, new state, partition) of each person it changed."""
    metrics = worker.metrics
    pending = []
    last_event_of: dict[str, Any] = {}
    now = time.time()
    outcomes: Counter[tuple[str, str]] = Counter()
    for event, decided in zip(events, handled.outcomes):
        outcomes[decided.stream, decided.outcome] += 1
        message = event.message
        if decided.error is not None:
            code, error = decided.error
            kept = [(k, v) for k, v in message.headers or () if k.lower() not in _ERROR_HEADERS]
            pending.append(dict(topic=worker.dlq, key=message.key, value=message.value, headers=kept + [
                ("carewatch-error", error.encode("ascii", "replace")),
                ("carewatch-error-code", code.encode("ascii")),
            ]))
            metrics.dead_letters.labels(code).inc()
        if decided.subject is not None:
            last_event_of[decided.subject] = event
        if decided.record is not None:
            subject = decided.subject.encode()
            if message.key != subject:
                metrics.key_mismatch.inc()
            pending.append(dict(topic=worker.risk, key=subject, value=decided.record))
            metrics.event_lag.observe(max(0.0, now - decided.event_time))
            for value, team, severity, reason in decided.alerts:
                pending.append(dict(topic=worker.alerts, key=subject, value=value))
                metrics.alerts.labels(team, severity, reason).inc()
    for labels, count in outcomes.items():  # once a batch: a labelled counter costs a lookup a call
        metrics.events.labels(*labels).inc(count)
    metrics.risk.inc(sum(count for (_, outcome), count in outcomes.items() if outcome == Outcome.PROCESSED.value))
    # Each state lives in the partition of its subject's own event, as if that were processed alone.
    states = [(key, value, last_event_of[key.decode()].message.partition) for key, value in handled.states.items()]
    return pending, states


def _store(worker: Worker, states: list[tuple[bytes, bytes, int]], decided: _Decided) -> None:
    """(key, state, partition) records in the store."""
    write_all(worker.people, states)
    for key, value, _ in states:
        decided.written(key, value)
        worker.metrics.state_bytes.observe(len(value))


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
