"""A faust table's store in raw bytes, and its changelog sent by the agent itself, acknowledged.

The agents read and write each person's value straight in the store (RocksDB's own get and put for the
current event's partition): the table's mapping API costs two lookups and two codec calls a read. And they
send the changelog records with `send_all` and wait for the broker: through the table's API each write went
through faust's producer buffer, which past 100 records holds back every faust delivery until it drains.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from faust.stores.base import SerializedStore
from faust.stores.rocksdb import Store as RocksDBStore
from faust.streams import _current_event
from rocksdict import WriteBatch

from .produce import send_all

__all__ = ["Parsed", "in_partition_of", "raw", "send_changelog", "write_all"]

T = TypeVar("T")


def raw(table: Any) -> tuple[Callable[[bytes], bytes | None], Callable[[bytes, bytes], None]]:
    """The table's store's read and write, in bytes: in the current event's partition (other stores: mappings)."""
    store = table.data
    if isinstance(store, SerializedStore):
        return store._get, store._set
    return store.get, store.__setitem__


def in_partition_of(event: Any, call: Callable[..., Any], *args: Any) -> Any:
    """`call` with `event` as faust's current event, so that a store reads or writes in the event's partition.

    With no event current, faust looks a key up in every partition this worker holds.
    """
    token = _current_event.set(weakref.ref(event) if event is not None else None)
    try:
        return call(*args)
    finally:
        _current_event.reset(token)


def write_all(table: Any, records: list[tuple[bytes, bytes | None, int]]) -> None:
    """(key, value, partition) records into the table's store (a value None deletes). RocksDB takes each
    partition's records as one write batch: one atomic write and one append to its log, where a put each cost 7%
    of the worker's time."""
    store = table.data
    if not isinstance(store, RocksDBStore):
        for key, value, _ in records:
            if value is None:
                store.pop(key, None)
            else:
                store[key] = value
        return
    batches: dict[int, WriteBatch] = {}
    for key, value, partition in records:
        batch = batches.get(partition)
        if batch is None:
            batch = batches[partition] = WriteBatch(raw_mode=True)
        if value is None:
            batch.delete(key)
            continue
        batch.put(key, value)
        store._key_index[key] = partition  # as faust's own write: a lookup with no event current goes there first
    for partition, batch in batches.items():
        store._db_for_partition(partition).write(batch)


async def send_changelog(table: Any, records: list[tuple[bytes, bytes | None, int]]) -> None:
    """Send (key, value, partition) records to the table's changelog (None: a tombstone), and wait until the broker
    has them all."""
    for sent, count in await send_all([{"topic": table.changelog_topic, "key": key, "value": value,
                                        "partition": partition} for key, value, partition in records]):
        # what faust does for each record it sends itself: a restore reads the changelog from there on
        table.data.set_persisted_offset(sent.topic_partition, sent.offset + count - 1)


class Parsed(Generic[T]):
    """Values parsed from a store, each kept beside its bytes: a read whose bytes are the same takes the parsed
    value and skips the parse.

    A value is handed out once (taken out of here) because its user changes it in place, and comes back only
    with its new bytes, once they are written: a value changed by work that then failed is not kept. Bytes the
    store got otherwise (restored from the changelog, written by another worker before a rebalance) are parsed,
    never matched to a value from here.
    """

    def __init__(self, *, capacity: int) -> None:
        self._capacity = capacity
        self._kept: dict[bytes, tuple[bytes, T]] = {}  # oldest first

    def take(self, key: bytes, raw: bytes) -> T | None:
        kept = self._kept.pop(key, None)
        return kept[1] if kept is not None and kept[0] == raw else None

    def keep(self, key: bytes, raw: bytes, value: T) -> None:
        self._kept[key] = (raw, value)
        if len(self._kept) > self._capacity:
            del self._kept[next(iter(self._kept))]
