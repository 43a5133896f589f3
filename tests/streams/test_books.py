"""Books in the table's store: a head per person and a record per case, so no record grows with the cases."""

from __future__ import annotations

from types import SimpleNamespace

import orjson
import pytest

from alerts.dispatch import Book
from streams.agents.books import Books
from streams.agents.store import Parsed
from tests.alerts.conftest import alert
from tests.alerts.test_dispatch import dispatcher


class Event:
    """The record a book is read for: its partition is the person's."""

    def __init__(self, partition: int) -> None:
        self.message = SimpleNamespace(partition=partition)


HERE = Event(0)


class Table:
    """A table on the memory store, as the agents see it (raw bytes)."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def items(self):
        return self.data.items()

    def write(self, records) -> None:
        for key, value in records:
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value


def test_a_change_writes_the_head_and_the_cases_it_touched_and_deletes_those_forgotten():
    table, d = Table(), dispatcher()
    books = Books(table=table, parsed=Parsed(capacity=0))  # nothing kept parsed: every read is from the store
    book = books.read(b"p-7f3a9c", HERE)
    for i in range(300):
        d.on_alert(book, alert(alert_id=f"al-{i:040x}", evidence=[f"evt-{i}"]), now=i)
    head, records = books.changes(b"p-7f3a9c", book)
    table.write(records)
    assert len(records) == 301 and max(len(value) for _, value in records) < 2_000

    again = books.read(b"p-7f3a9c", HERE)
    assert again.cases == book.cases and again.notices == book.notices
    first = f"al-{0:040x}"
    d.on_action(again, first, "resolve", None, now=400)  # 401: nothing changes, nothing is written but the head
    assert again.touched == set()
    d.on_delivered(again, first, f"{first}.fire>hook", channel="hook")
    _, records = books.changes(b"p-7f3a9c", again)
    assert [key for key, _ in records] == [b"p-7f3a9c", f"p-7f3a9c/{first}".encode()]

    again.cases[first]["acted"] = 500  # closed long ago: the next tick forgets it
    d.on_tick(again, now=500 + 31 * 86_400)
    _, records = books.changes(b"p-7f3a9c", again)
    table.write(records)
    assert (f"p-7f3a9c/{first}".encode(), None) in records
    assert first not in books.read(b"p-7f3a9c", HERE).cases and books.case("p-7f3a9c", first) is None
    assert books.case("p-7f3a9c", f"al-{1:040x}") == again.cases[f"al-{1:040x}"]
    assert dict(books.everyone())["p-7f3a9c"].cases == again.cases


def test_a_book_kept_parsed_is_handed_out_only_for_the_head_it_was_written_with():
    table = Table()
    books = Books(table=table, parsed=Parsed(capacity=8))
    book = books.read(b"p-7f3a9c", HERE)
    dispatcher().on_alert(book, alert(), now=0)
    head, records = books.changes(b"p-7f3a9c", book)
    table.write(records)
    books.kept(b"p-7f3a9c", head, book)
    assert books.read(b"p-7f3a9c", HERE) is book and book.touched == set()
    books.kept(b"p-7f3a9c", head, book)
    table.data[b"p-7f3a9c"] = orjson.dumps({"v": 2, "notices": [], "written": "elsewhere"})  # another writer
    assert books.read(b"p-7f3a9c", HERE) is not book


def test_a_book_of_the_first_layout_is_read_and_its_cases_move_out_at_the_next_write():
    table, d = Table(), dispatcher()
    old = Book()
    d.on_alert(old, alert(), now=0)
    table.data[b"p-7f3a9c"] = orjson.dumps({"v": 1, "cases": old.cases, "notices": old.notices})
    books = Books(table=table, parsed=Parsed(capacity=0))
    book = books.read(b"p-7f3a9c", HERE)
    assert book.cases == old.cases
    head, records = books.changes(b"p-7f3a9c", book)
    table.write(records)
    assert "cases" not in orjson.loads(table.data[b"p-7f3a9c"])
    assert books.read(b"p-7f3a9c", HERE).cases == old.cases


def test_a_key_that_is_not_a_subject_is_refused():
    with pytest.raises(ValueError, match="^key: a subject has no '/'$"):
        Books(table=Table(), parsed=Parsed(capacity=0)).read(b"p-7f3a9c/al-1", HERE)
