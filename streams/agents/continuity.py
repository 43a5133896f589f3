"""Continuity: every record of a held partition reaches its agent, in offset order; a skipped one is read again.

faust's fetcher drops a record whose offset is below the read offset it
keeps per partition, and around a rebalance that read offset can stand past
records no agent saw (the chaos suite caught it: runs of 12 to 14 alerts on
three partitions of carewatch.alerts never reached the alerting agent, and
nothing showed it). So each agent checks, before it handles a record, that
its offset is the one it expects: one past the last it handled on that
partition, or, on a partition newly held, the group's committed offset (or
the log's start). A record past a gap is neither handled nor acknowledged;
the gap is checked against the log itself (the first record at or after the
expected offset, read outside the group), and if records are there the
partition is sought back to the first of them (counted in
`carewatch_offset_gaps_total`). A gap the log itself has (transaction
markers, compaction) is accepted. Records fetched before the seek that
arrive after it are passed over, and each seeks again: faust's fetcher
moves its read offset past every record it delivers, so a stale record
delivered after the seek made it drop the records read again (a restarted
worker under load saw partitions stand still for minutes). Once no stale
record came for `patience` seconds, a record past the gap makes the check
again, and a partition not yet read again is sought again even if no
record arrives.

faust's fetcher also counts every jump in offsets it sees as a gap that may
be committed over (the record it jumped to included), and a stale record
after a seek back is such a jump: a commit past records never handled, lost
at the next crash. On the agents' topics that is switched off; only gaps the
log itself has, as checked here, are given to faust to commit over.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

if TYPE_CHECKING:
    from ..app import Worker

__all__ = ["Continuity", "Probe", "from_the_start_if_uncommitted", "install"]

log = logging.getLogger(__name__)


class Probe:
    """Asks the broker, outside the group, where a partition's records are and where the group committed."""

    def __init__(self, *, bootstrap_servers: str, group: str, wait: float = 5.0) -> None:
        self._bootstrap = bootstrap_servers.split(",")
        self._group = group
        self._wait_ms = int(wait * 1000)
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None

    async def first(self, tp: Any, offset: int) -> int | None:
        """The offset of the first record at or after `offset` (None if none came back in time)."""
        return await self._bounded(self._first(tp, offset), f"read {tp.topic}[{tp.partition}] at {offset}")

    async def committed(self, tp: Any) -> int | None:
        """The group's committed offset of a partition (None if it has none, or the broker did not say in time)."""
        return await self._bounded(self._committed(tp), f"read the committed offset of {tp.topic}[{tp.partition}]")

    async def _bounded(self, asking: Awaitable[int | None], what: str) -> int | None:
        """An answer within twice the wait, or None: the agent waits on this, and its records with it."""
        try:
            return await asyncio.wait_for(asking, 2 * self._wait_ms / 1000)
        except asyncio.TimeoutError:
            log.warning("could not %s within %.0f s; going on without it", what, 2 * self._wait_ms / 1000)
            try:  # a client that did not answer is dropped; the next question starts a new one
                await asyncio.wait_for(self.stop(), 2 * self._wait_ms / 1000)
            except asyncio.TimeoutError:
                self._consumer = self._admin = None
            return None

    async def _first(self, tp: Any, offset: int) -> int | None:
        try:
            if self._consumer is None:  # kept before it starts, so that a stop closes it whatever happens
                self._consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False,
                                                  auto_offset_reset="earliest", fetch_max_wait_ms=100)
                await self._consumer.start()
            partition = TopicPartition(tp.topic, tp.partition)
            self._consumer.assign([partition])
            self._consumer.seek(partition, offset)
            got = await self._consumer.getmany(partition, timeout_ms=self._wait_ms, max_records=1)
        except KafkaError as exc:
            log.warning("could not read %s[%d] at %d: %s", tp.topic, tp.partition, offset, type(exc).__name__)
            await self.stop()
            return None
        records = got.get(partition) or []
        return records[0].offset if records else None

    async def _committed(self, tp: Any) -> int | None:
        partition = TopicPartition(tp.topic, tp.partition)
        try:
            if self._admin is None:
                self._admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
                await self._admin.start()
            offsets = await self._admin.list_consumer_group_offsets(self._group, partitions=[partition])
        except KafkaError as exc:
            log.warning("could not read the committed offset of %s[%d]: %s", tp.topic, tp.partition,
                        type(exc).__name__)
            await self.stop()
            return None
        found = offsets.get(partition)
        return found.offset if found is not None and found.offset >= 0 else None

    async def stop(self) -> None:
        for client in (self._consumer, self._admin):
            if client is not None:
                await (client.stop() if isinstance(client, AIOKafkaConsumer) else client.close())
        self._consumer = self._admin = None


class Continuity:
    """Decides, per record, whether its agent may handle it now; seeks back over the records it missed."""

    def __init__(self, *, agent: str, probe: Probe, seek: Callable[[Any, int], Awaitable[None]],
                 committed: Callable[[Any], int | None], skip: Callable[[Any, int, int], Awaitable[None]],
                 on_gap: Callable[[str], None] = lambda topic: None, patience: float = 5.0) -> None:
        self.agent = agent
        self.probe = probe
        self._seek, self._committed, self._skip, self._on_gap = seek, committed, skip, on_gap
        self.patience = patience
        self.next: dict[Any, int] = {}  # partition -> offset the agent expects next
        self._seeking: dict[Any, tuple[int, float]] = {}  # partition -> (offset sought to, when)

    def assigned(self, held: Iterable[Any]) -> None:
        """A new assignment: keep where the agent got to on partitions it still holds, forget the rest."""
        held = set(held)
        self.next = {tp: offset for tp, offset in self.next.items() if tp in held}
        self._seeking.clear()

    async def admit(self, message: Any) -> bool:
        """True if the agent may handle `message` now; False if it must pass it over (it will come again)."""
        tp, offset = message.tp, message.offset
        expected = self.next.get(tp)
        if expected is None:  # newly held: the group's committed offset, or the log's start if none
            expected = self._committed(tp)
            if expected is None:  # faust has not read it yet (records can come before its seek)
                expected = await self.probe.committed(tp)
            expected = expected or 0
        if offset <= expected:  # in order, or read again after a seek (a duplicate)
            self.next[tp] = offset + 1
            self._seeking.pop(tp, None)
            return True
        sought = self._seeking.get(tp)
        if sought is not None and sought[0] == expected and time.monotonic() - sought[1] < self.patience:
            self._seeking[tp] = (expected, time.monotonic())  # patience counts from the last stale record
            await self._seek(tp, expected)  # fetched before the seek, and it moved faust's read offset on
            return False
        first = await self.probe.first(tp, expected)
        if first is not None and first >= offset:  # the log itself has no record in between
            await self._skip(tp, expected, offset - 1)
            self.next[tp] = offset + 1
            self._seeking.pop(tp, None)
            return True
        missing = f"{expected}..{offset - 1}" if first is None else f"{first}..{offset - 1}"
        log.error("%s: offsets %s of %s[%d] never reached the agent; reading the partition again from %d",
                  self.agent, missing, tp.topic, tp.partition, first if first is not None else expected)
        self._on_gap(tp.topic)
        target = first if first is not None else expected
        self.next[tp] = target
        self._seeking[tp] = (target, time.monotonic())
        await self._seek(tp, target)
        return False

    async def read_again(self, tps: Iterable[Any]) -> None:
        """Seek each partition to the offset the agent expects next (the watchdog's nudge when nothing comes).

        Records faust dropped at a partition's end leave no later record to show the gap, and faust's own seek
        to the committed offsets does not move a partition that has none: the chaos suite saw an alert wait
        there until the worker exited.
        """
        for tp in tps:
            expected = self.next.get(tp)
            if expected is None:
                expected = self._committed(tp)
            if expected is None:
                expected = await self.probe.committed(tp)
            await self._seek(tp, expected or 0)  # 0: the log's start (the reset policy if it is gone)

    async def recheck(self, held: Iterable[Any]) -> list[Any]:
        """Seek again each held partition whose reading again has not begun within `patience`."""
        now, held = time.monotonic(), set(held)
        late = [(tp, target) for tp, (target, since) in self._seeking.items()
                if tp in held and now - since >= self.patience]
        for tp, target in late:
            log.warning("%s: %s[%d] is not read again from %d after %.0f s; seeking again", self.agent, tp.topic,
                        tp.partition, target, self.patience)
            self._seeking[tp] = (target, now)
            await self._seek(tp, target)
        return [tp for tp, _ in late]


def install(worker: Worker, *, agent: str, topics: Iterable[str]) -> Continuity:
    """A Continuity for one agent of this worker's app (reading `topics`), told of every new assignment."""
    app = worker.app
    topics = set(topics)
    for topic in topics:
        worker.metrics.offset_gaps.labels(topic)
    continuity = Continuity(
        agent=agent,
        probe=Probe(bootstrap_servers=worker.settings.kafka.bootstrap_servers, group=worker.settings.worker.app_id),
        seek=lambda tp, offset: _seek(app.consumer, tp, offset),
        committed=lambda tp: app.consumer._committed_offset.get(tp),
        skip=lambda tp, first, last: _faust_gap(app.consumer)(tp, first, last),
        on_gap=lambda topic: worker.metrics.offset_gaps.labels(topic).inc(),
    )

    from_the_start_if_uncommitted(app.consumer, topics)

    @app.on_partitions_assigned.connect
    async def assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:  # noqa: ARG001 - faust's signal
        _checked_gaps_only(app.consumer, topics)
        continuity.assigned(assigned)

    @app.timer(continuity.patience, name=f"carewatch.continuity.{agent}")
    async def recheck() -> None:
        try:
            await continuity.recheck(app.consumer.assignment())
        except KafkaError as exc:  # given up in a rebalance under way: the new assignment resets the seeks
            log.warning("%s: could not seek again: %s", agent, type(exc).__name__)

    return continuity


async def _seek(consumer: Any, tp: Any, offset: int) -> None:
    """faust's `Consumer.seek`, done on the consumer's own thread.

    faust's seek calls aiokafka's from the caller's thread, and aiokafka's
    client lives on faust's consumer thread: the seek rewrites a position and
    drops fetched records under that thread's feet, and completes its futures
    from the wrong loop.
    """
    await consumer._thread.call_thread(consumer._thread.seek, tp, offset)
    consumer._read_offset[tp] = offset if offset else None  # what faust's seek sets after aiokafka's


def from_the_start_if_uncommitted(consumer: Any, topics: Iterable[str]) -> None:
    """Make faust's seek to the committed offsets seek a partition of `topics` with none to the log's start.

    After a rebalance faust reads every partition again from its committed offset, dropping what it had fetched
    (its agents' queues are cleared, a fetch under way is cut short). aiokafka's seek to committed offsets
    leaves a partition with none (or 0) where it was, past records no agent saw: the chaos suite saw an alert
    on such a partition never routed. With no committed offset the records to read start at the log's start.
    """
    if getattr(consumer, "_carewatch_from_start", None) is not None:
        consumer._carewatch_from_start |= set(topics)
        return
    consumer._carewatch_from_start = set(topics)
    seek_to_committed = consumer.seek_to_committed

    async def seek_to_committed_or_start() -> Any:
        committed = await seek_to_committed()
        fresh = [tp for tp, offset in committed.items()
                 if tp.topic in consumer._carewatch_from_start and (offset is None or offset <= 0)]
        if fresh:
            await consumer._thread.call_thread(_to_start, consumer._thread, fresh)
        return committed

    consumer.seek_to_committed = seek_to_committed_or_start


def _to_start(thread: Any, tps: list) -> None:
    for tp in tps:
        thread.seek(tp, 0)  # below the log's start, aiokafka's reset policy (earliest) takes it to the start


def _faust_gap(consumer: Any) -> Callable[[Any, int, int], Awaitable[None]]:
    """faust's own way to mark offsets `first..last` of a partition as committable without an ack."""
    return getattr(consumer, "_carewatch_add_gap", consumer._add_gap)


def _checked_gaps_only(consumer: Any, topics: set[str]) -> None:
    """Stop faust's fetcher from marking jumps in offsets on `topics` as committable (once per consumer)."""
    if getattr(consumer, "_carewatch_gaps_for", None) is not None:
        consumer._carewatch_gaps_for |= topics
        return
    consumer._carewatch_gaps_for = set(topics)
    consumer._carewatch_add_gap = original = consumer._add_gap

    async def add_gap(tp: Any, offset_from: int, offset_to: int) -> None:
        if tp.topic not in consumer._carewatch_gaps_for:
            await original(tp, offset_from, offset_to)

    consumer._add_gap = add_gap
