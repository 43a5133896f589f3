"""Sending records and waiting until the broker has each: retried, never given up (the partition waits).

Records go out as one record batch per topic partition (aiokafka's `send_batch`), in the order given, rather
than one `send` each: the worker produces about two records per event, and a record sent on its own cost
about 140 µs of the worker's one core (its own future, partition batch and callbacks).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Any

__all__ = ["Gathered", "oldest_wait", "send_all", "sent_within"]

log = logging.getLogger(__name__)

_BACKOFF = (0.1, 0.5, 1.0, 2.0, 5.0)
#: when each send_all now waiting began (monotonic): a send that never ends wedges its agent
_WAITING: dict[int, float] = {}
_tokens = itertools.count()


class Gathered:
    """`send_all` for many small senders: what they hand in during one turn of the event loop goes out as one
    send_all, and each waits until the broker has it.

    aiokafka holds one record batch per partition at a time, so many small sends to the same partitions (the
    outcome of each delivery, each on its own task) waited on each other: 8% of the worker in one profile.
    """

    def __init__(self) -> None:
        self._messages: list[dict[str, Any]] = []
        self._sending: asyncio.Future | None = None

    async def send(self, messages: list[dict[str, Any]]) -> None:
        self._messages += messages
        if self._sending is None:
            self._sending = asyncio.ensure_future(self._send())
        await asyncio.shield(self._sending)  # a sender cancelled does not cancel the others' records

    async def _send(self) -> None:
        await asyncio.sleep(0)  # the other senders of this turn hand theirs in
        messages, self._messages, self._sending = self._messages, [], None
        await send_all(messages)


async def sent_within(seconds: float, messages: list[dict[str, Any]]) -> bool:
    """`send_all`, waited for `seconds` at most: False when the broker has not taken them by then (an outage),
    and the send goes on. For a person's request that must not hang on what only the audit trail needs."""
    try:
        async with asyncio.timeout(seconds):
            await asyncio.shield(send_all(messages))
        return True
    except asyncio.TimeoutError:
        return False


def oldest_wait(now: float) -> float:
    """Seconds the longest-waiting send_all has waited so far (0 when none waits)."""
    return max((now - started for started in _WAITING.values()), default=0.0)


async def send_all(messages: list[dict[str, Any]]) -> list[Any]:
    """Send every message (topic, key, value, headers; `partition` if not the key's) and wait for the acks.

    What fails is retried. Returns the broker's metadata of each batch sent (topic, partition, offset of its
    first record), with the number of records in it, as `(metadata, count)`.
    """
    if not messages:
        return []
    token = next(_tokens)
    _WAITING[token] = time.monotonic()
    try:
        return await _send_all(messages)
    finally:
        del _WAITING[token]


async def _send_all(messages: list[dict[str, Any]]) -> list[Any]:
    producer = messages[0]["topic"].app.producer._ensure_producer()
    sent = []
    for attempt in itertools.count():
        failed = []
        for items, batch in await _hand(producer, messages):
            try:
                sent.append((await batch, len(items)))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # classified by type name only: no record content in logs
                failed.append((items, exc))
        if not failed:
            return sent
        delay = _BACKOFF[min(attempt, len(_BACKOFF) - 1)]
        log.warning("%d of %d sends failed (%s); retrying in %.1f s", sum(len(items) for items, _ in failed),
                    len(messages), type(failed[0][1]).__name__, delay)
        await asyncio.sleep(delay)
        messages = [message for items, _ in failed for message in items]
    raise AssertionError("unreachable")


async def _hand(producer: Any, messages: list[dict[str, Any]]) -> list[tuple[list, Any]]:
    """Hand the messages to the producer as record batches, in order per topic partition.

    Returns each batch's messages with the future of its acks (or the error that kept it from the producer).
    """
    try:
        by_partition: dict[tuple[str, int], list] = {}
        counts: dict[str, int] = {}
        for message in messages:
            topic = message["topic"].get_topic_name()
            partition = message.get("partition")
            if partition is None:
                count = counts.get(topic)
                if count is None:
                    await producer.client._wait_on_metadata(topic)
                    count = counts[topic] = len(producer._metadata.partitions_for_topic(topic))
                partition = _partition_of(producer, topic, count, message["key"], message["value"])
            by_partition.setdefault((topic, partition), []).append(message)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return [(messages, _failed(exc))]
    handed = []
    for (topic, partition), items in by_partition.items():
        batch, held = producer.create_batch(), []
        for message in items:
            record = {"key": message["key"], "value": message["value"], "timestamp": None,
                      "headers": message.get("headers") or []}
            if batch.append(**record) is None:  # full: hand it over and start the next
                handed.append((held, await _send_batch(producer, batch, topic, partition)))
                batch, held = producer.create_batch(), []
                batch.append(**record)  # a batch's first record always fits
            held.append(message)
        batch.close()  # complete: aiokafka sends a closed batch at once, an open one after the producer's linger
        handed.append((held, await _send_batch(producer, batch, topic, partition)))
    return handed


#: (topic, partition count, key) -> partition, for keys seen lately: aiokafka's murmur2 is pure Python (5 µs)
_PARTITIONS: dict[tuple[str, int, bytes], int] = {}
_PARTITIONS_KEPT = 65_536


def _partition_of(producer: Any, topic: str, count: int, key: bytes | None, value: bytes | None) -> int:
    """The partition aiokafka's partitioner gives a key (the same for the same key and partition count)."""
    if key is None:  # no key: the partitioner spreads records at random
        return producer._partition(topic, None, None, None, key, value)
    partition = _PARTITIONS.get((topic, count, key))
    if partition is None:
        if len(_PARTITIONS) >= _PARTITIONS_KEPT:
            _PARTITIONS.clear()
        partition = _PARTITIONS[(topic, count, key)] = producer._partition(topic, None, None, None, key, value)
    return partition


async def _send_batch(producer: Any, batch: Any, topic: str, partition: int) -> Any:
    try:
        return await producer.send_batch(batch, topic, partition=partition)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return _failed(exc)


def _failed(exc: Exception) -> asyncio.Future:
    future = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    return future
