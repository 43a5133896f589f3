"""Sending in record batches: a keyed record goes where aiokafka's own partitioner puts it, at once."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from streams.agents import produce
from streams.agents.produce import Gathered, _partition_of, send_all
from streams.topics import RISK


class Producer:
    """aiokafka's `_partition` for a topic of `count` partitions, counting its calls."""

    def __init__(self, count: int) -> None:
        self.count, self.calls = count, 0
        self._partitioner = DefaultPartitioner()

    def _partition(self, topic, partition, key, value, serialized_key, serialized_value):  # noqa: ARG002
        self.calls += 1
        return self._partitioner(serialized_key, list(range(self.count)), list(range(self.count)))


def test_a_keys_partition_is_the_partitioners_and_is_worked_out_once_per_partition_count():
    producer = Producer(12)
    keys = [f"p-{i:04d}".encode() for i in range(200)]
    expected = [DefaultPartitioner()(key, list(range(12)), list(range(12))) for key in keys]
    assert [_partition_of(producer, "t-risk", 12, key, b"{}") for key in keys] == expected
    assert len(set(expected)) == 12
    assert [_partition_of(producer, "t-risk", 12, key, b"{}") for key in keys] == expected
    assert producer.calls == 200  # the second time from what it kept
    producer.count = 5  # the topic grew or shrank: worked out again
    assert _partition_of(producer, "t-risk", 5, keys[0], b"{}") == DefaultPartitioner()(keys[0], [0, 1, 2, 3, 4],
                                                                                          [0, 1, 2, 3, 4])
    assert producer.calls == 201
    _partition_of(producer, "t-risk", 5, None, b"{}")
    _partition_of(producer, "t-risk", 5, None, b"{}")
    assert producer.calls == 203  # no key: the partitioner's choice each time


class _Topic:
    """What send_all reads of a faust topic: its name, and the app's aiokafka producer."""

    def __init__(self, name: str, producer: AIOKafkaProducer) -> None:
        self._name = name
        self.app = type("App", (), {"producer": type("Producer", (), {"_ensure_producer": lambda: producer})})

    def get_topic_name(self) -> str:
        return self._name


@pytest.mark.kafka
async def test_a_batch_built_by_the_worker_goes_out_at_once_not_after_the_producers_linger(topics):
    # a linger far longer than a send: a record batch left open would wait for it before aiokafka sent it
    producer = AIOKafkaProducer(bootstrap_servers=topics.bootstrap, acks="all", linger_ms=10_000)
    await producer.start()
    try:
        risk = _Topic(topics.name(RISK), producer)
        await send_all([{"topic": risk, "key": b"p-warm", "value": b"{}"}])  # metadata, connection
        began = time.monotonic()
        sent = await send_all([{"topic": risk, "key": f"p-{i}".encode(), "value": b"{}"} for i in range(50)])
        assert time.monotonic() - began < 5.0
        assert sum(count for _, count in sent) == 50
    finally:
        await producer.stop()
    assert topics.count(RISK) == 51


async def test_what_senders_hand_in_together_goes_out_as_one_send_and_a_cancelled_one_takes_none_with_it(
        monkeypatch):
    sent = []

    async def send_all(messages):
        sent.append(list(messages))
        await asyncio.sleep(0)

    monkeypatch.setattr(produce, "send_all", send_all)
    gathered = Gathered()
    await asyncio.gather(gathered.send([{"n": 1}]), gathered.send([{"n": 2}, {"n": 3}]))
    await gathered.send([{"n": 4}])
    assert sent == [[{"n": 1}, {"n": 2}, {"n": 3}], [{"n": 4}]]
    cancelled = asyncio.ensure_future(gathered.send([{"n": 5}]))
    other = asyncio.ensure_future(gathered.send([{"n": 6}]))
    await asyncio.sleep(0)
    cancelled.cancel()
    await other
    assert sent[-1] == [{"n": 5}, {"n": 6}]
