"""People's books in the alert-books table: one head record per person and one record per case.

A book used to be one record, rewritten whole (to RocksDB and to its changelog) at every alert, delivery
outcome and escalation of the person. A storm of alerts for one person (safety alerts are never capped, and a
case stays until a human closes it) made each change cost O(cases), and at about 1,300 cases the record passed
the broker's 1 MB limit: its changelog send failed for good and routing stopped for everyone the worker held
(a test showed it). Now a change writes the person's head (the repeat cap's notices, and a token new at each
write) and the cases it touched, and deletes the cases it forgot: no record grows with the number of cases.

Keys: the subject for the head, `subject/alert id` for a case. Subjects have no '/' (CONTRACT §1), so a
person's cases are the keys after `subject/`: one range read in the partition's store. A head of the first
layout holds its cases itself; it is read as such, and the next write moves them out.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from faust.stores.rocksdb import Store as RocksDBStore

from alerts.dispatch import Book

from .store import Parsed, in_partition_of, raw

__all__ = ["Books", "SEPARATOR"]

SEPARATOR = b"/"
#: makes each head written unique: a head read back as written means the cases are as written too
_TOKENS = (f"{os.getpid():x}.{os.urandom(4).hex()}.{n}" for n in itertools.count())


class Books:
    """Reads and writes books in the table's store, in raw bytes."""

    def __init__(self, *, table: Any, parsed: Parsed[Book]) -> None:
        self._table = table
        self._parsed = parsed

    def read(self, key: bytes, event: Any) -> Book:
        """The person's book as stored, in the partition of `event` (theirs): the one kept parsed if the head is the
        one it was written with."""
        if SEPARATOR in key:
            raise ValueError("key: a subject has no '/'")
        head = in_partition_of(event, raw(self._table)[0], key)
        book = self._parsed.take(key, head) if head else None
        if book is None:
            book = _decode(head, (value for _, value in self._range(key + SEPARATOR, event.message.partition)))
        return book

    def changes(self, key: bytes, book: Book) -> tuple[bytes, list[tuple[bytes, bytes | None]]]:
        """The book's new head, and what to write for it: the head, the cases touched, None for those dropped."""
        head = orjson.dumps({"v": 2, "notices": book.notices, "written": next(_TOKENS)})
        records: list[tuple[bytes, bytes | None]] = [(key, head)]
        prefix = key + SEPARATOR
        records += [(prefix + i.encode(), orjson.dumps(book.cases[i])) for i in book.touched if i in book.cases]
        records += [(prefix + i.encode(), None) for i in book.dropped if i not in book.cases]
        return head, records

    def kept(self, key: bytes, head: bytes, book: Book) -> None:
        """The book is written with `head`: keep it parsed, clean."""
        book.touched.clear()
        book.dropped.clear()
        self._parsed.keep(key, head, book)

    def case(self, subject: str, alert_id: str) -> dict[str, Any] | None:
        """One case, from any partition held here."""
        value = in_partition_of(None, raw(self._table)[0], subject.encode() + SEPARATOR + alert_id.encode())
        return orjson.loads(value) if value else None

    def everyone(self) -> Iterator[tuple[str, Book]]:
        """Every book held here, by subject."""
        heads: dict[bytes, bytes] = {}
        cases: dict[bytes, list[bytes]] = {}
        for key, value in in_partition_of(None, lambda: list(self._table.items())):
            subject, separator, _ = key.partition(SEPARATOR)
            if separator:
                cases.setdefault(subject, []).append(value)
            else:
                heads[key] = value
        for subject in heads.keys() | cases.keys():
            yield subject.decode(), _decode(heads.get(subject), cases.get(subject, ()))

    def _range(self, prefix: bytes, partition: int) -> Iterable[tuple[bytes, bytes]]:
        store = self._table.data
        if not isinstance(store, RocksDBStore):  # the memory store: all of it
            return [(k, v) for k, v in list(store.items()) if k.startswith(prefix)]
        found = []
        for key, value in store._db_for_partition(partition).items(from_key=prefix):
            if not key.startswith(prefix):
                break
            found.append((key, value))
        return found


def _decode(head: bytes | None, cases: Iterable[bytes]) -> Book:
    data = orjson.loads(head) if head else {"notices": []}
    book = Book(cases=data.get("cases", {}), notices=data["notices"])  # "cases": the first layout's head
    if data.get("v", 1) == 1:
        book.touched.update(book.cases)  # out of the head at the next write
    for value in cases:
        case = orjson.loads(value)
        book.cases[case["alert"]["alert_id"]] = case
    return book
