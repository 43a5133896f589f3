"""Reading back the newest records of a topic, for the console's pages (risk trends, audit trails).

Pages ask for a bounded window, the newest `per_partition` records of some
partitions, read with a consumer of no group (it commits nothing and moves
no one's offsets). One consumer per topic, one read at a time. A read the
broker has not answered within a few seconds (an outage) gives None, so that
a page shows what the worker holds itself rather than hang.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

__all__ = ["History"]

#: seconds a read waits for the broker
_WAIT = 5.0


class History:
    def __init__(self, *, bootstrap_servers: str, topic: str) -> None:
        self.topic = topic
        self._bootstrap = bootstrap_servers.split(",")
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def newest(self, partitions: Iterable[int], *, per_partition: int) -> list[Any] | None:
        """The newest records of each partition, at most `per_partition` each, in offset order per partition;
        None when the broker does not answer within `_WAIT` seconds."""
        async with self._lock:
            try:
                async with asyncio.timeout(_WAIT):
                    return await self._read([TopicPartition(self.topic, p) for p in partitions], per_partition)
            except (asyncio.TimeoutError, KafkaError):
                return None

    async def _read(self, wanted: list[TopicPartition], per_partition: int) -> list[Any]:
        consumer = await self._started()
        consumer.assign(wanted)
        ends = await consumer.end_offsets(wanted)
        starts = await consumer.beginning_offsets(wanted)
        left = {}
        for tp in wanted:
            begin = max(starts[tp], ends[tp] - per_partition)
            if begin < ends[tp]:
                consumer.seek(tp, begin)
                left[tp] = ends[tp]
        records: list[Any] = []
        while left:
            batch = await consumer.getmany(*left, timeout_ms=1000)
            if not batch:
                break  # the broker gave nothing within a second: show what was read
            for tp, got in batch.items():
                records += [r for r in got if r.offset < left[tp]]
                if got and got[-1].offset >= left[tp] - 1:
                    del left[tp]
        return records

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False,
                                        auto_offset_reset="latest", fetch_max_wait_ms=50)
            try:
                await consumer.start()
            except BaseException:  # no broker (or the read's wait ended): the next read starts another
                await consumer.stop()
                raise
            self._consumer = consumer
        return self._consumer

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
