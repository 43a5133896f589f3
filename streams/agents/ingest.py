"""The ingest agent: every record of carewatch.events to exactly one outcome, in batches.

Records come from the intake (`intake.py`: taken out of faust's fetches in
bulk) in batches of at most `worker.batch_max` events, gathered for at most
`worker.batch_wait` after the first, and go to the one code path
(`Pipeline.handle_batch`), which scores each batch with one call per model.
Then, in this order:

1. outputs: dead letters to carewatch.events.dlq byte for byte with the two
   headers of CONTRACT §1, a record per processed event on carewatch.risk,
   alerts on carewatch.alerts; the agent waits until the broker has them;
2. state: each person's new state is written to the table's store (RocksDB)
   and to its changelog topic, and the agent waits until the broker has those;
3. the batch's offsets may be committed (the agent commits every
   `broker_commit_interval`, and on a revocation).

A crash between 1 and 2 redelivers the batch to a state that has not seen
it: outputs repeat with the same alert ids (at least once), nothing is lost.
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
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from ..pipeline import Outcome
from ..state import PersonState
from .continuity import from_the_start_if_uncommitted
from .intake import Intake
from .produce import send_all
from .store import in_partition_of, raw, send_changelog

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

    A state is handed out once (taken out of here) because the pipeline changes it in place, and comes back only
    with the bytes written to the table after its batch: a batch that never gets stored leaves nothing behind.
    Every read still goes to the table and compares, so a state the table got otherwise (restored from the
    changelog, written by another worker before a rebalance) is parsed from the table, never taken from here.
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


class StagedStates:
    """The pipeline's StateStore for one batch: reads the table, holds writes until outputs are out."""

    def __init__(self, read: Callable[[bytes], bytes | None], events: list, parsed: ParsedStates) -> None:
        self._read = read
        self._parsed = parsed
        #: an event keyed by each subject: its partition is where the subject's state lives
        self._by_key = {event.message.key: event for event in events}
        self.staged: dict[str, PersonState] = {}

    def get(self, subject: str) -> PersonState | None:
        key = subject.encode()
        # in the partition of the subject's own event (a record keyed otherwise: in every partition held)
        raw = in_partition_of(self._by_key.get(key), self._read, key)
        if raw is None:
            return None
        state = self._parsed.take(key, raw)
        return state if state is not None else PersonState.loads(raw)

    def put(self, subject: str, state: PersonState) -> None:
        self.staged[subject] = state


def install(worker: Worker, progress: Progress) -> Any:
    settings = worker.settings.worker
    parsed = ParsedStates()
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
        storing: asyncio.Task | None = None
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
            staged = await _until_done("handling a batch", lambda: _handle(
                worker, batch, parsed, current=lambda: generation == intake.generation))
            # The next batch is taken while this one's changelog records are on their way (its states are in
            # the store already); one batch's at a time, so that a person's changelog records stay in order.
            if storing is not None:
                await storing
            storing = asyncio.create_task(stored(batch, generation, *staged))

    async def stored(batch: list, generation: int, changelog: list, started: float) -> None:
        await _until_done("storing a batch's changelog", lambda: _stored(worker, changelog, started))
        intake.handled(batch, generation=generation)
        progress.on_handled()

    return ingest


async def _handle(worker: Worker, events: list, parsed: ParsedStates, *, current: Any) -> tuple[list, float]:
    """Outputs on the broker, then states in the store: the changelog records to send, and when storing began."""
    pipeline, metrics = worker.pipeline, worker.metrics
    started = time.perf_counter()
    read, write = raw(worker.people)
    states = StagedStates(read, events, parsed)
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
    delivering = time.perf_counter()
    metrics.batch_seconds.labels("processed").observe(delivering - started)
    await send_all(pending)
    storing = time.perf_counter()
    metrics.batch_seconds.labels("delivered").observe(storing - delivering)
    changelog: list = []
    if not current():  # a rebalance took the partitions meanwhile: their next owner handles the batch again
        return changelog, storing
    for subject, state in states.staged.items():
        # Each state lives in the partition of its subject's own event, as if that were processed alone.
        event = last_event_of[subject]
        key, value = subject.encode(), state.dumps()
        in_partition_of(event, write, key, value)
        parsed.keep(key, value, state)
        changelog.append((key, value, event.message.partition))
        metrics.state_bytes.observe(len(value))
    return changelog, storing


async def _stored(worker: Worker, changelog: list, started: float) -> None:
    """A batch's changelog records on the broker, and the store told where its changelog stands."""
    await send_changelog(worker.people, changelog)
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
