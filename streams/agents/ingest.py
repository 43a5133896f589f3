"""The ingest agent: every record of carewatch.events to exactly one outcome, in batches.

Records are taken in batches (at most `worker.batch_max` events, and at most
`worker.batch_wait` after the first) and handed to the one code path
(`Pipeline.handle_batch`), which scores each batch with one call per model.
Then, in this order:

1. outputs: dead letters to carewatch.events.dlq byte for byte with the two
   headers of CONTRACT §1, a record per processed event on carewatch.risk,
   alerts on carewatch.alerts; the agent waits until the broker has them;
2. state: each person's new state is written to the table (RocksDB and its
   changelog topic);
3. the batch's offsets are acknowledged (faust commits them later, after
   flushing the producer).

A crash between 1 and 2 redelivers the batch to a state that has not seen
it: outputs repeat with the same alert ids (at least once), nothing is lost.
A crash after 2 redelivers events the state has seen: they are duplicates,
and their outputs are already on the broker. Faust acknowledges events even
when the agent's body raises, so the body must not raise: the pipeline
never does, and a send that fails is retried, holding the partition back
rather than losing the event.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import TYPE_CHECKING, Any

import orjson
from faust.streams import _current_event

from ..pipeline import Outcome
from ..state import PersonState
from .produce import send_all
from .continuity import install as continuity_for

if TYPE_CHECKING:
    from ..app import Worker
    from .watchdog import Progress

__all__ = ["install"]


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

    def __init__(self, table: Any, events: list, parsed: ParsedStates) -> None:
        self._table = table
        self._parsed = parsed
        #: an event keyed by each subject: its partition is where the subject's state lives
        self._by_key = {event.message.key: event for event in events}
        self.staged: dict[str, PersonState] = {}

    def get(self, subject: str) -> PersonState | None:
        key = subject.encode()
        event = self._by_key.get(key)
        # With the subject's own event current, faust reads that one partition; with none (a record
        # keyed otherwise), it looks the key up in every assigned partition.
        token = _current_event.set(weakref.ref(event) if event is not None else None)
        try:
            raw = self._table.get(key)
        finally:
            _current_event.reset(token)
        if raw is None:
            return None
        state = self._parsed.take(key, raw)
        return state if state is not None else PersonState.loads(raw)

    def put(self, subject: str, state: PersonState) -> None:
        self.staged[subject] = state


def install(worker: Worker, progress: Progress) -> Any:
    settings = worker.settings.worker
    continuity = continuity_for(worker, agent="ingest", topics=[worker.events.get_topic_name()])
    parsed = ParsedStates()

    @worker.app.agent(worker.events, name="carewatch.ingest")
    async def ingest(stream):
        # A reader task moves events from faust's stream (manual acks) into a queue of ours; the
        # agent takes a batch from it: the first event waits, the rest is what arrives within
        # batch_wait, up to batch_max. Never waiting on faust's stream while holding a partial batch
        # matters: a rebalance can empty faust's queue under a waiting reader, and a batch held
        # back then stays unacknowledged for good. (faust's take_events() stalls that way.)
        manual = stream.noack()
        arrived: asyncio.Queue = asyncio.Queue(maxsize=4 * settings.batch_max)

        async def read() -> None:
            async for event in manual.events():
                if not await continuity.admit(event.message):
                    continue  # past a gap: neither handled nor acknowledged; it comes again after the seek
                progress.on_read(event.message.partition, event.message.offset)
                await arrived.put(event)

        reader = asyncio.create_task(read())
        try:
            while True:
                batch = [await arrived.get()]
                deadline = time.monotonic() + settings.batch_wait
                while len(batch) < settings.batch_max:
                    if not arrived.empty():
                        batch.append(arrived.get_nowait())
                        continue
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    try:
                        batch.append(await asyncio.wait_for(arrived.get(), left))
                    except asyncio.TimeoutError:
                        break
                taken = time.time()
                worker.metrics.batch_events.observe(len(batch))
                worker.metrics.batch_seconds.labels("waited").observe(
                    max(0.0, taken - min(event.message.timestamp or taken for event in batch)))
                await _handle(worker, batch, parsed)
                for done in batch:  # only now may faust commit past them
                    await manual.ack(done)
                progress.on_handled()
        finally:
            reader.cancel()
            await continuity.probe.stop()

    return ingest


async def _handle(worker: Worker, events: list, parsed: ParsedStates) -> None:
    pipeline, metrics = worker.pipeline, worker.metrics
    started = time.perf_counter()
    states = StagedStates(worker.people, events, parsed)
    records = [(event.message.value or b"", _content_type(event.message.headers)) for event in events]
    results = pipeline.handle_batch(records, states=states, now=time.time())
    pending = []
    last_event_of: dict[str, Any] = {}
    now = time.time()
    for event, result in zip(events, results):
        metrics.events.labels(result.event.stream if result.event else "invalid", result.outcome.value).inc()
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
            metrics.risk.inc()
            metrics.event_lag.observe(max(0.0, now - result.event.timestamp))
            for alert in result.alerts:
                pending.append(dict(topic=worker.alerts, key=subject, value=orjson.dumps(alert.to_dict())))
                metrics.alerts.labels(alert.care_team, alert.severity, alert.reasons[0].code).inc()
    delivering = time.perf_counter()
    metrics.batch_seconds.labels("processed").observe(delivering - started)
    await send_all(pending)
    storing = time.perf_counter()
    metrics.batch_seconds.labels("delivered").observe(storing - delivering)
    for subject, state in states.staged.items():
        # The table writes a key's changelog record to the partition of the current event:
        # make that the subject's own event, as if it were processed alone.
        token = _current_event.set(weakref.ref(last_event_of[subject]))
        try:
            key, value = subject.encode(), state.dumps()
            worker.people[key] = value
            parsed.keep(key, value, state)
            metrics.state_bytes.observe(len(value))
        finally:
            _current_event.reset(token)
    metrics.batch_seconds.labels("stored").observe(time.perf_counter() - storing)


def _content_type(headers: Any) -> str | None:
    for key, value in headers or ():
        if key.lower() == "content-type":
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return None
