"""A faust table's store in raw bytes, and its changelog sent by the agent itself, acknowledged.

The agents read and write each person's value straight in the store (RocksDB's own get and put for the
current event's partition): the table's mapping API costs two lookups and two codec calls a read. And they
send the changelog records with `send_all` and wait for the broker: through the table's API each write went
through faust's producer buffer, which past 100 records holds back every faust delivery until it drains.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from faust.stores.base import SerializedStore
from faust.streams import _current_event

from .produce import send_all

__all__ = ["in_partition_of", "raw", "send_changelog"]


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


async def send_changelog(table: Any, records: list[tuple[bytes, bytes, int]]) -> None:
    """Send (key, value, partition) records to the table's changelog, and wait until the broker has them all."""
    for sent, count in await send_all([{"topic": table.changelog_topic, "key": key, "value": value,
                                        "partition": partition} for key, value, partition in records]):
        # what faust does for each record it sends itself: a restore reads the changelog from there on
        table.data.set_persisted_offset(sent.topic_partition, sent.offset + count - 1)
