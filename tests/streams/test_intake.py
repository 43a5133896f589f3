"""The intake's own rules, without a broker: turns, order, backpressure, what is committed, revocation.

The consumer here is a stand-in with the few faust methods the intake calls; the
pipeline tests (test_ingest, test_crash, the chaos suite) run it on the real broker.
"""

from __future__ import annotations

import asyncio

from aiokafka.structs import ConsumerRecord, TopicPartition
from faust.types import TP

from streams.agents.intake import Intake

EVENTS = "t.carewatch.events"


class Consumer:
    """What of faust's consumer the intake touches, recording each call."""

    def __init__(self, *, assigned=()) -> None:
        self.assigned = set(assigned)
        self.fetched: dict = {}
        self.timeouts: list[float] = []
        self.full: set = set()
        self.commits: list[dict] = []
        self.emptied = 0

    async def _wait_next_records(self, timeout: float):
        self.timeouts.append(timeout)
        fetched, self.fetched = self.fetched, {}
        return fetched, self.assigned

    async def wait_empty(self) -> None:
        self.emptied += 1

    def on_buffer_full(self, tp) -> None:
        self.full.add(tp)

    def on_buffer_drop(self, tp) -> None:
        self.full.discard(tp)

    def assignment(self):
        return self.assigned

    async def _commit(self, offsets) -> bool:
        self.commits.append(dict(offsets))
        return True


def records(partition: int, offsets, topic: str = EVENTS) -> list:
    return [ConsumerRecord(topic, partition, offset, 1_700_000_000_000, 0, b"k", b"{}", None, 1, 2, ())
            for offset in offsets]


def intake(consumer: Consumer, *, limit: int = 100, revoke_wait: float = 5.0) -> Intake:
    taken = Intake(topic=EVENTS, limit=limit, revoke_wait=revoke_wait)
    taken.attach(consumer)
    return taken


def offsets(batch) -> list[tuple[int, int]]:
    return [(read.message.partition, read.message.offset) for read in batch]


async def test_the_events_records_of_a_fetch_go_to_the_intake_and_the_rest_to_faust():
    consumer = Consumer(assigned={TP(EVENTS, 0), TP("t.carewatch.alerts", 0)})
    taken = intake(consumer)
    alerts = TopicPartition("t.carewatch.alerts", 0)
    consumer.fetched = {TopicPartition(EVENTS, 0): records(0, range(3)), alerts: records(0, range(2), "t.carewatch.alerts")}
    left, _ = await consumer._wait_next_records(1.0)
    assert list(left) == [alerts]
    batch = await taken.take(most=10, wait=0)
    assert offsets(batch) == [(0, 0), (0, 1), (0, 2)]
    assert {type(read.tp) for read in batch} == {TP}  # faust's own type, as its consumer asserts


async def test_partitions_take_turns_and_each_keeps_its_order():
    taken = intake(Consumer())
    taken.put(TP(EVENTS, 0), records(0, range(10)))
    taken.put(TP(EVENTS, 1), records(1, range(10)))
    first = await taken.take(most=6, wait=0)
    assert offsets(first) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    rest = await taken.take(most=100, wait=0)
    assert [o for p, o in offsets(rest) if p == 0] == list(range(3, 10))
    assert [o for p, o in offsets(rest) if p == 1] == list(range(3, 10))


async def test_a_record_fetched_again_after_a_seek_is_passed_over():
    taken = intake(Consumer())
    taken.put(TP(EVENTS, 0), records(0, range(5)))
    await taken.take(most=100, wait=0)
    taken.put(TP(EVENTS, 0), records(0, range(3, 7)))  # sought back to 3: 3 and 4 were taken already
    assert offsets(await taken.take(most=100, wait=0)) == [(0, 5), (0, 6)]


async def test_a_first_record_is_awaited_and_more_gathered_for_the_batch_wait():
    taken = intake(Consumer())
    waiting = asyncio.create_task(taken.take(most=3, wait=5.0))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    taken.put(TP(EVENTS, 0), records(0, [0]))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # one of three, within the wait
    taken.put(TP(EVENTS, 1), records(1, [0, 1]))
    assert offsets(await asyncio.wait_for(waiting, 1.0)) == [(0, 0), (1, 0), (1, 1)]


async def test_a_full_partition_is_left_out_of_fetches_until_it_is_half_drained():
    consumer = Consumer(assigned={TP(EVENTS, 0)})
    taken = intake(consumer, limit=4)
    consumer.fetched = {TopicPartition(EVENTS, 0): records(0, range(5))}
    await consumer._wait_next_records(1.0)
    assert consumer.full == {TP(EVENTS, 0)}
    await consumer._wait_next_records(1.0)
    assert consumer.timeouts[-1] < 0.1  # while one is held back, fetches come back soon to read it again
    await taken.take(most=3, wait=0)  # 2 left: not below half
    assert consumer.full == {TP(EVENTS, 0)}
    await taken.take(most=1, wait=0)
    assert consumer.full == set()


async def test_handled_offsets_of_assigned_partitions_are_committed_once():
    consumer = Consumer(assigned={TP(EVENTS, 0)})
    taken = intake(consumer)
    taken.put(TP(EVENTS, 0), records(0, range(4)))
    taken.put(TP(EVENTS, 1), records(1, range(2)))  # no longer assigned
    batch = await taken.take(most=100, wait=0)
    await taken.commit()
    assert consumer.commits == []  # nothing handled yet
    taken.handled(batch, generation=taken.generation)
    await taken.commit()
    await taken.commit()
    assert consumer.commits == [{TP(EVENTS, 0): 4}]


async def test_a_revocation_waits_for_the_batch_in_hand_commits_it_and_drops_the_rest():
    consumer = Consumer(assigned={TP(EVENTS, 0)})
    taken = intake(consumer)
    taken.put(TP(EVENTS, 0), records(0, range(10)))
    batch = await taken.take(most=4, wait=0)
    revoking = asyncio.create_task(taken.revoked({TP(EVENTS, 0)}))
    await asyncio.sleep(0.01)
    assert not revoking.done()
    taken.handled(batch, generation=taken.generation)
    await asyncio.wait_for(revoking, 1.0)
    assert consumer.commits == [{TP(EVENTS, 0): 4}]
    # faust seeks to the committed offset after the rebalance: the dropped records come again and are taken
    taken.put(TP(EVENTS, 0), records(0, range(4, 6)))
    assert offsets(await taken.take(most=100, wait=0)) == [(0, 4), (0, 5)]


async def test_a_batch_still_in_hand_after_the_revocation_is_never_committed():
    consumer = Consumer(assigned={TP(EVENTS, 0)})
    taken = intake(consumer, revoke_wait=0.01)
    taken.put(TP(EVENTS, 0), records(0, range(3)))
    batch = await taken.take(most=100, wait=0)
    generation = taken.generation
    await taken.revoked({TP(EVENTS, 0)})
    assert generation != taken.generation
    taken.handled(batch, generation=generation)
    await taken.commit()
    assert consumer.commits == []


async def test_faust_waiting_for_its_streams_before_a_stop_also_commits_the_intakes_offsets():
    consumer = Consumer(assigned={TP(EVENTS, 0)})
    taken = intake(consumer)
    taken.put(TP(EVENTS, 0), records(0, range(2)))
    batch = await taken.take(most=100, wait=0)
    stopping = asyncio.create_task(consumer.wait_empty())
    await asyncio.sleep(0.01)
    assert not stopping.done()  # the batch in hand first
    taken.handled(batch, generation=taken.generation)
    await asyncio.wait_for(stopping, 1.0)
    assert consumer.emptied == 1 and consumer.commits == [{TP(EVENTS, 0): 2}]


async def test_no_batch_is_handed_out_while_a_revocation_waits_for_the_two_in_hand():
    consumer = Consumer(assigned={TP(EVENTS, 0)})
    taken = intake(consumer)
    taken.put(TP(EVENTS, 0), records(0, range(9)))
    storing = await taken.take(most=3, wait=0)  # its changelog on the way
    processing = await taken.take(most=3, wait=0)
    revoking = asyncio.create_task(taken.revoked({TP(EVENTS, 0)}))
    third = asyncio.create_task(taken.take(most=3, wait=0))
    await asyncio.sleep(0.01)
    assert not third.done()
    taken.handled(storing, generation=taken.generation)
    await asyncio.sleep(0.01)
    assert not revoking.done()
    taken.handled(processing, generation=taken.generation)
    await asyncio.wait_for(revoking, 1.0)
    assert consumer.commits == [{TP(EVENTS, 0): 6}]
    assert not third.done()  # what was held is dropped: read again from the committed offset after the seek
    taken.put(TP(EVENTS, 0), records(0, range(6, 9)))
    assert offsets(await asyncio.wait_for(third, 1.0)) == [(0, 6), (0, 7), (0, 8)]
