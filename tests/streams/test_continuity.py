"""Continuity: no record of a held partition is handled out of order or passed over for good.

The decisions are checked against a log kept here; the probe (the consumer
of no group that reads the real log) is checked against the real broker.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict, namedtuple
from types import SimpleNamespace

import pytest
from faust.transport.consumer import Consumer as FaustConsumer
from intervaltree import IntervalTree
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition

from streams.agents.continuity import (
    Continuity,
    Probe,
    _checked_gaps_only,
    _faust_gap,
    _seek,
    from_the_start_if_uncommitted,
)

TP = namedtuple("TP", "topic partition")
Message = namedtuple("Message", "tp offset")
ALERTS = TP("carewatch.alerts", 0)


class Log:
    """A partition's log as the broker has it, and what the agent asked of the consumer."""

    def __init__(self, offsets, *, silent: bool = False) -> None:
        self.offsets = sorted(offsets)
        self.silent = silent
        self.probes: list[int] = []
        self.seeks: list[tuple[TP, int]] = []
        self.gaps: list[str] = []
        self.skipped: list[tuple[int, int]] = []  # what faust was told it may commit over
        self.group_committed: int | None = None

    async def first(self, tp, offset):
        self.probes.append(offset)
        return None if self.silent else next((o for o in self.offsets if o >= offset), None)

    async def committed(self, tp):
        return self.group_committed

    async def stop(self) -> None:
        pass

    async def seek(self, tp, offset) -> None:
        self.seeks.append((tp, offset))

    async def skip(self, tp, first, last) -> None:
        self.skipped.append((first, last))


def continuity(log: Log, *, committed=None, patience: float = 60.0) -> Continuity:
    return Continuity(agent="alerting", probe=log, seek=log.seek, committed=lambda tp: (committed or {}).get(tp),
                      skip=log.skip, on_gap=log.gaps.append, patience=patience)


async def admitted(c: Continuity, offsets) -> list[int]:
    return [offset for offset in offsets if await c.admit(Message(ALERTS, offset))]


async def test_records_in_order_are_handled_without_asking_the_broker():
    log = Log(range(10))
    c = continuity(log, committed={ALERTS: 0})
    assert await admitted(c, range(10)) == list(range(10))
    assert log.probes == [] and log.seeks == []


async def test_records_the_consumer_passed_over_are_read_again_before_any_later_one():
    log = Log(range(30))
    c = continuity(log, committed={ALERTS: 0})
    assert await admitted(c, [0, 1, 2]) == [0, 1, 2]
    # faust's fetcher dropped 3..14: 15 arrives next, then more fetched before the seek
    assert await admitted(c, [15]) == []
    assert log.seeks == [(ALERTS, 3)] and log.gaps == ["carewatch.alerts"]
    # fetched before the seek: each one moved faust's read offset past 3, so each seeks back again
    assert await admitted(c, [16, 17]) == []
    assert log.seeks == [(ALERTS, 3)] * 3
    assert log.probes == [3] and log.gaps == ["carewatch.alerts"]  # no second look, one gap
    assert await admitted(c, range(3, 20)) == list(range(3, 20))
    assert len(log.seeks) == 3 and log.skipped == []  # nothing committed over


async def test_a_gap_the_log_itself_has_is_accepted():
    log = Log([0, 1, 2, 5, 6])  # 3 and 4 are transaction markers (or compacted away)
    c = continuity(log, committed={ALERTS: 0})
    assert await admitted(c, [0, 1, 2, 5, 6]) == [0, 1, 2, 5, 6]
    assert log.probes == [3] and log.seeks == [] and log.gaps == []
    assert log.skipped == [(3, 4)]  # faust may commit over them, and only them


async def test_a_partition_newly_held_starts_where_the_group_committed():
    log = Log(range(100))
    c = continuity(log, committed={ALERTS: 40})
    assert await admitted(c, [52]) == []
    assert log.seeks == [(ALERTS, 40)]
    assert await admitted(c, range(40, 53)) == list(range(40, 53))


async def test_records_read_again_after_a_rebalance_are_handled_again():
    log = Log(range(100))
    c = continuity(log, committed={ALERTS: 0})
    assert await admitted(c, range(10)) == list(range(10))
    c.assigned([ALERTS])  # kept: faust seeks to the committed offset, 5, and 5..9 come again
    assert await admitted(c, range(5, 12)) == list(range(5, 12))
    assert log.seeks == []


async def test_a_partition_given_up_is_forgotten():
    log = Log(range(100))
    c = continuity(log, committed={ALERTS: 60})
    assert await admitted(c, range(10)) == list(range(10))
    c.assigned([])  # another worker took it and went on to 60
    c.assigned([ALERTS])
    assert await admitted(c, [60, 61]) == [60, 61]
    assert log.seeks == []


async def test_when_the_reread_does_not_come_the_check_is_made_again():
    log = Log(range(30))
    c = continuity(log, committed={ALERTS: 0}, patience=0.0)
    assert await admitted(c, [0, 8]) == [0]
    assert await admitted(c, [9]) == []
    assert log.seeks == [(ALERTS, 1), (ALERTS, 1)]


async def test_a_partition_not_read_again_in_time_is_sought_again_though_no_record_comes():
    log = Log(range(30))
    c = continuity(log, committed={ALERTS: 0}, patience=0.0)
    assert await admitted(c, [0, 8]) == [0]
    assert await c.recheck([]) == []  # not held any more: left alone
    assert await c.recheck([ALERTS]) == [ALERTS]
    assert log.seeks == [(ALERTS, 1), (ALERTS, 1)]
    assert await admitted(c, [1, 2]) == [1, 2]
    assert await c.recheck([ALERTS]) == []  # being read again: nothing to do
    assert len(log.seeks) == 2


async def test_a_broker_that_does_not_answer_is_never_taken_for_an_empty_gap():
    log = Log(range(30), silent=True)
    c = continuity(log, committed={ALERTS: 0})
    assert await admitted(c, [0, 1, 7]) == [0, 1]
    assert log.seeks == [(ALERTS, 2)]


async def test_before_faust_has_read_the_committed_offset_the_broker_is_asked():
    log = Log(range(100))
    log.group_committed = 70
    c = continuity(log, committed={})
    assert await admitted(c, [70, 71]) == [70, 71]
    assert log.probes == [] and log.seeks == []


async def test_without_a_committed_offset_the_log_start_is_expected():
    log = Log(range(10, 20))  # retention removed 0..9
    c = continuity(log, committed={})
    assert await admitted(c, [10, 11]) == [10, 11]
    assert log.probes == [0] and log.seeks == [] and log.skipped == [(0, 9)]
    dropped = Log(range(20))
    c = continuity(dropped, committed={})
    assert await admitted(c, [5]) == []
    assert dropped.seeks == [(ALERTS, 0)]


class Bookkeeping:
    """faust's consumer's commit bookkeeping: its own methods on its own fields, without a broker."""

    _add_gap = FaustConsumer._add_gap
    _new_offset = FaustConsumer._new_offset

    def __init__(self) -> None:
        self._gap = defaultdict(IntervalTree)
        self._acked = defaultdict(list)
        self._acked_index = defaultdict(set)
        self._committed_offset = defaultdict(lambda: None)

    def commit(self, tp) -> int | None:
        """The offset faust would commit now (each call of its takes one run of acked offsets)."""
        while (offset := self._new_offset(tp)) is not None:
            self._committed_offset[tp] = offset
        return self._committed_offset[tp]


async def test_faust_commits_over_no_jump_its_fetcher_saw_only_over_gaps_the_log_has():
    consumer = Bookkeeping()
    _checked_gaps_only(consumer, {"carewatch.events"})
    events, other = TP("carewatch.events", 0), TP("other", 0)
    # after a seek back to 353, a record fetched before it (1500) makes the fetcher see a jump
    consumer._committed_offset[events] = 353
    await consumer._add_gap(events, 354, 1500)
    consumer._acked[events].extend([353, 354, 355])
    assert consumer.commit(events) == 356  # not 1501: 356..1500 were never handled
    await _faust_gap(consumer)(events, 356, 359)  # the log has no records there (checked by the probe)
    consumer._acked[events].append(360)
    assert consumer.commit(events) == 361
    await consumer._add_gap(other, 1, 5)  # other topics keep faust's own rule
    assert consumer._gap[other]


@pytest.mark.kafka
async def test_the_probe_reads_the_first_record_at_or_after_an_offset_from_the_broker(topics):
    topics.create()
    topics.send_raw([(b"p-1", b"{}")] * 5, topic="carewatch.alerts")
    partition = next(tp.partition for tp, end in topics.end_offsets("carewatch.alerts").items() if end)
    probe = Probe(bootstrap_servers=topics.bootstrap, group="no-such-group", wait=0.5)
    try:
        tp = TP(topics.name("carewatch.alerts"), partition)
        assert await probe.first(tp, 2) == 2
        assert await probe.first(tp, 0) == 0
        assert await probe.first(tp, 5) is None  # nothing there yet
        assert await probe.committed(tp) is None
        group = KafkaConsumer(bootstrap_servers=topics.bootstrap, group_id=f"{topics.prefix}probe",
                              enable_auto_commit=False)
        group.assign([TopicPartition(tp.topic, partition)])
        group.commit({TopicPartition(tp.topic, partition): OffsetAndMetadata(3, "", -1)})
        group.close()
        member = Probe(bootstrap_servers=topics.bootstrap, group=f"{topics.prefix}probe")
        try:
            assert await member.committed(tp) == 3
        finally:
            await member.stop()
    finally:
        await probe.stop()


async def test_a_probe_whose_broker_never_answers_gives_up_within_twice_its_wait():
    # the alerting agent waits on the probe, and every record behind it waits too
    accepted = []
    silent = await asyncio.start_server(lambda reader, writer: accepted.append(writer), "127.0.0.1", 0)  # never answers
    port = silent.sockets[0].getsockname()[1]
    probe = Probe(bootstrap_servers=f"127.0.0.1:{port}", group="g", wait=0.2)
    started = time.monotonic()
    try:
        assert await probe.committed(TP("t.carewatch.alerts", 0)) is None
        assert await probe.first(TP("t.carewatch.alerts", 0), 3) is None
    finally:
        await probe.stop()
        for writer in accepted:
            writer.close()
        silent.close()
        await silent.wait_closed()
    assert time.monotonic() - started < 3.0


async def test_a_seek_back_is_made_on_the_consumer_thread_where_the_client_lives():
    """faust's own seek would touch aiokafka's fetcher from the agent's thread, under its consumer thread's feet."""
    seen: list[tuple[TP, int, int]] = []

    class ConsumerThread:  # faust's: call_thread runs the call on the thread that owns the client
        def seek(self, tp, offset):
            seen.append((tp, offset, threading.get_ident()))

        async def call_thread(self, fun, *args):
            return await asyncio.to_thread(fun, *args)

    consumer = SimpleNamespace(_thread=ConsumerThread(), _read_offset={})
    await _seek(consumer, ALERTS, 7)
    assert seen == [(ALERTS, 7, seen[0][2])] and seen[0][2] != threading.get_ident()
    assert consumer._read_offset == {ALERTS: 7}  # faust's fetcher drops what lies below it: as faust's seek sets it


async def test_the_watchdogs_nudge_reads_a_partition_again_from_where_the_agent_got_to():
    """A dropped last record leaves no later one to show the gap, and faust's seek to committed offsets does not
    move a partition that has none: the chaos suite saw an alert wait there until the worker exited."""
    log = Log(range(10))
    c = continuity(log, committed={TP("carewatch.alerts", 1): 4})
    assert await admitted(c, [0, 1, 2]) == [0, 1, 2]
    await c.read_again([ALERTS, TP("carewatch.alerts", 1), TP("carewatch.alerts", 2)])
    assert log.seeks == [(ALERTS, 3), (TP("carewatch.alerts", 1), 4), (TP("carewatch.alerts", 2), 0)]
    log.group_committed = 7  # faust has not read it yet: the broker is asked
    await c.read_again([TP("carewatch.alerts", 3)])
    assert log.seeks[-1] == (TP("carewatch.alerts", 3), 7)


async def test_after_a_rebalance_a_partition_with_no_committed_offset_is_read_from_the_log_start():
    """aiokafka's seek to committed offsets leaves such a partition past what faust dropped (an alert never
    routed in the chaos suite)."""
    sought: list[tuple[TP, int, int]] = []
    alerts, commands, changelog, events = (TP("t.carewatch.alerts", 0), TP("t.carewatch.alerts.commands", 1),
                                           TP("t-alert-books-changelog", 0), TP("t.carewatch.events", 2))

    class ConsumerThread:
        def seek(self, tp, offset):
            sought.append((tp, offset, threading.get_ident()))

        async def call_thread(self, fun, *args):
            return await asyncio.to_thread(fun, *args)

    committed = {alerts: None, commands: 0, TP("t.carewatch.alerts", 1): 5, changelog: None, events: None}

    async def seek_to_committed():
        return committed

    consumer = SimpleNamespace(_thread=ConsumerThread(), seek_to_committed=seek_to_committed)
    from_the_start_if_uncommitted(consumer, ["t.carewatch.alerts", "t.carewatch.alerts.commands"])
    from_the_start_if_uncommitted(consumer, ["t.carewatch.events"])  # the intake's, patched once
    assert await consumer.seek_to_committed() is committed
    assert sorted((tp, offset) for tp, offset, _ in sought) == [(alerts, 0), (commands, 0), (events, 0)]
    assert all(thread != threading.get_ident() for _, _, thread in sought)  # on the client's own thread
