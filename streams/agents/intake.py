"""The intake: carewatch.events records taken out of each fetch in bulk, for the ingest agent.

faust hands every record to its agents one at a time, through its conductor, a
channel queue and a stream, each with its own futures, callbacks and acks:
about 190 µs of the worker's one core a record here (a bare faust agent that
only counts reads 5,000 a second). The intake takes the events topic's records
out of every fetch as aiokafka returned them (per partition, in offset order)
before that path; the other topics (alerts, commands) still go through faust.

faust still holds the group: it assigns the events partitions with the
tables' partitions, pauses them while state is restored, and seeks every
partition to its committed offset after a rebalance. faust never sees these
records, so it never commits them: the ingest agent commits what it has
handled (`handled`, `commit`), after the batch's outputs and state are on the
broker, as Kafka Streams commits at-least-once.

- Backpressure: a partition holding `limit` records is left out of the next
  fetches (faust's own buffer-full flow), the others are read on.
- Rebalance: on revocation the intake waits for the batches in hand (so their
  state and offsets land before another worker takes the partition: it tells
  `on_finishing`, so that states waiting to be stored are stored now), commits,
  and drops what it holds; faust's seek to the committed offsets reads it again.
- Order: a record below its partition's next offset (fetched before a seek)
  was taken already and is passed over.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from faust.types import TP

__all__ = ["Intake", "Read"]

log = logging.getLogger(__name__)

#: longest wait of a fetch while a partition is held back, so that it is read again soon after it drains
_HELD_BACK_POLL = 0.02


class Read:
    """One record handed out, with its faust partition; faust's tables take it for the current event."""

    __slots__ = ("tp", "message", "__weakref__")

    def __init__(self, tp: Any, record: Any) -> None:
        self.tp = tp
        #: aiokafka's ConsumerRecord: topic, partition, offset, timestamp (ms), key, value, headers
        self.message = record


class Intake:
    """Holds fetched events records per partition; hands them out in batches; knows what to commit."""

    def __init__(self, *, topic: str, limit: int, revoke_wait: float) -> None:
        self.topic = topic
        self._limit = limit
        self._revoke_wait = revoke_wait
        self._held: dict[Any, deque] = {}
        self._count = 0
        self._full: set[Any] = set()
        self._arrived = asyncio.Event()
        #: per partition: the offset after the last record handed out
        self._next: dict[Any, int] = {}
        #: per partition: the offset after the last record handled, not yet committed
        self._done: dict[Any, int] = {}
        #: batches handed out and not yet handled (being decided, delivered, or waiting for their states' store)
        self._in_hand = 0
        self._idle = asyncio.Event()
        self._idle.set()
        #: set from a revocation's start to its end (and from a stop on): no batch is handed out
        self._held_back = False
        #: counts revocations: a batch taken before one may no longer write state
        self.generation = 0
        #: called when a revocation or a stop begins to wait for the batches in hand
        self.on_finishing: Callable[[], None] = lambda: None
        self._consumer: Any = None

    def attach(self, consumer: Any) -> None:
        """Take the events records out of every fetch of faust's consumer, before faust sees one."""
        self._consumer = consumer
        fetch = consumer._wait_next_records

        async def wait_next_records(timeout: float) -> Any:
            records, active = await fetch(min(timeout, _HELD_BACK_POLL) if self._full else timeout)
            if records:
                for tp in [tp for tp in records if tp.topic == self.topic]:
                    self.put(TP(tp.topic, tp.partition), records.pop(tp))  # faust's own type, from aiokafka's
            return records, active

        consumer._wait_next_records = wait_next_records
        wait_empty = consumer.wait_empty

        async def wait_empty_and_commit() -> None:  # faust's step before a revocation and at a stop
            await self._finish()
            await wait_empty()
            await self.commit()

        consumer.wait_empty = wait_empty_and_commit

    def put(self, tp: Any, records: list) -> None:
        held = self._held.get(tp)
        if held is None:
            held = self._held[tp] = deque()
        held.extend(records)
        self._count += len(records)
        if len(held) >= self._limit and tp not in self._full:
            self._full.add(tp)
            self._consumer.on_buffer_full(tp)
        self._arrived.set()

    async def take(self, *, most: int, wait: float) -> list:
        """The next batch: waits for a first record, then at most `wait` seconds for up to `most` records.

        Partitions take turns, each keeping its order. The batch is in hand until `handled` (or a revocation).
        """
        while True:
            while not self._count or self._held_back:
                self._arrived.clear()
                await self._arrived.wait()
            deadline = time.monotonic() + wait
            while self._count < most and (left := deadline - time.monotonic()) > 0:
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), left)
                except asyncio.TimeoutError:
                    break
            if not self._held_back and self._count:
                break
        batch: list = []
        while len(batch) < most and self._count:
            share = max(1, (most - len(batch)) // len(self._held))
            for tp in list(self._held):
                held, start = self._held[tp], self._next.get(tp, -1)
                for _ in range(min(share, len(held), most - len(batch))):
                    record = held.popleft()
                    self._count -= 1
                    if record.offset >= start:  # below: fetched again before a seek, taken already
                        batch.append(Read(tp, record))
                        start = record.offset + 1
                self._next[tp] = start
                if not held:
                    del self._held[tp]
                self._release(tp)
        if batch:
            self._in_hand += 1
            self._idle.clear()
        return batch

    @property
    def finishing(self) -> bool:
        """A revocation or a stop waits for the batches in hand: they are to be handled now."""
        return self._held_back

    async def _finish(self) -> None:
        """Hand out no more batches; wait for those in hand, if any, up to `revoke_wait`."""
        self._held_back = True
        self.on_finishing()
        try:
            await asyncio.wait_for(self._idle.wait(), self._revoke_wait)
        except asyncio.TimeoutError:
            log.warning("a batch of %s was still in hand after %.0f s: it will not be stored or committed",
                        self.topic, self._revoke_wait)

    def _release(self, tp: Any) -> None:
        if tp in self._full and len(self._held.get(tp, ())) < self._limit // 2:
            self._full.discard(tp)
            if tp in self._consumer.assignment():
                self._consumer.on_buffer_drop(tp)

    def handled(self, batch: list, *, generation: int) -> None:
        """The batch's outputs and state are on the broker: its offsets may be committed."""
        if generation != self.generation:  # still in hand when a revocation gave up waiting: forgotten then
            return
        for read in batch:
            self._done[read.tp] = read.message.offset + 1
        self._in_hand -= 1
        if not self._in_hand:
            self._idle.set()

    async def commit(self) -> None:
        """Commit the offsets handled since the last commit (a failed commit only means they come again)."""
        done, self._done = self._done, {}
        assigned = self._consumer.assignment()
        offsets = {tp: offset for tp, offset in done.items() if tp in assigned}
        if offsets and not await self._consumer._commit(offsets):
            log.warning("offsets of %d partitions of %s were not committed (rebalanced): they are read again",
                        len(offsets), self.topic)

    async def revoked(self, revoked: set) -> None:  # noqa: ARG002 - all are sought again, kept ones too
        """Finish the batch in hand, commit it, and drop what is held."""
        await self._finish()
        self.generation += 1
        await self.commit()
        self._held.clear()
        self._count = 0
        self._full.clear()
        self._next.clear()
        self._done.clear()
        self._in_hand = 0
        self._idle.set()
        self._held_back = False
        self._arrived.set()
