"""What the alerting agent holds in memory of its books: kept case by case, always what a reading of the whole
books would give, the gauges that page (open, unowned) included."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry

from alerts.config import SEVERITIES
from alerts.dispatch import Book
from alerts.metrics import AlertingMetrics
from alerts.routing import UNASSIGNED
from streams.agents.held import Held

TEAMS = ("north", "south")
NOW = 1_800_000_000.0


def held() -> tuple[Held, CollectorRegistry]:
    registry = CollectorRegistry()
    return Held(metrics=AlertingMetrics(registry=registry, channels={}), teams=TEAMS), registry


def seen(held: Held, registry: CollectorRegistry) -> dict:
    """Everything the agent, its timer, the ack API and the console ask of it."""
    return {
        "subject_of": dict(held.subject_of),
        "due": dict(held.due),
        "overdue": held.overdue(now=NOW),
        "summaries": {team: sorted(held.summaries(team)) for team in (*TEAMS, "gone")},
        "open": {s: registry.get_sample_value("carewatch_alerting_open_alerts", {"severity": s}) for s in SEVERITIES},
        "unowned": registry.get_sample_value("carewatch_alerting_unowned_alerts"),
    }


def change(rng: random.Random, book: Book, subject: str, serial: int) -> None:
    """What a decision does to a book: a case taken into care, acknowledged, resolved, muted, escalated, dropped."""
    roll = rng.random()
    if roll < 0.35 or not book.cases:
        identifier = f"al-{subject}-{serial}"
        book.cases[identifier] = {
            "alert": {"alert_id": identifier, "subject": subject, "severity": rng.choice(SEVERITIES),
                      "status": "firing", "care_team": rng.choice((*TEAMS, UNASSIGNED, "gone"))},
            "raised": NOW - rng.choice((10.0, 400.0, 4000.0)), "due": rng.choice((None, NOW + 60)),
            "muted": rng.choice((None, None, "repeat cap")), "pending": {},
        }
        book.touched.add(identifier)
        return
    identifier = rng.choice(sorted(book.cases))
    case = book.cases[identifier]
    if roll < 0.55:
        case["alert"]["status"] = rng.choice(("acknowledged", "resolved", "firing"))
        case["due"] = None if case["alert"]["status"] != "firing" else case["due"]
    elif roll < 0.7:
        case["muted"] = rng.choice((None, "silence s-1"))
    elif roll < 0.85:
        case["due"] = rng.choice((None, NOW + rng.randrange(1, 600)))
    else:
        del book.cases[identifier]
        book.dropped.add(identifier)
        return
    book.touched.add(identifier)


def test_kept_case_by_case_it_is_what_reading_every_book_gives():
    rng = random.Random(5)
    kept, registry = held()
    books = {f"p-held{i:02d}": Book() for i in range(6)}
    for serial in range(600):
        subject = rng.choice(sorted(books))
        book = books[subject]
        for _ in range(rng.randrange(1, 4)):  # a batch may change a book more than once before it is written
            change(rng, book, subject, serial)
        kept.track(subject, book, changed=book.touched | book.dropped)
        book.touched.clear()
        book.dropped.clear()
        if serial % 50 == 49:
            read, fresh = held()
            for name, whole in books.items():
                read.track(name, whole)
            assert seen(kept, registry) == seen(read, fresh)
    assert seen(kept, registry)["unowned"] > 0 and seen(kept, registry)["overdue"]  # the checks above saw both


def test_a_book_read_again_replaces_what_was_held_of_it():
    kept, registry = held()
    book = Book(cases={"al-1": {"alert": {"severity": "critical", "status": "firing", "care_team": "gone"},
                                "raised": NOW - 600, "due": NOW, "muted": None, "pending": {}}})
    kept.track("p-held01", book)
    assert seen(kept, registry)["open"]["critical"] == 1 and seen(kept, registry)["unowned"] == 1
    book.cases.clear()  # as the store has it now, read whole after a rebalance: nothing named as changed
    kept.track("p-held01", book)
    assert seen(kept, registry)["open"]["critical"] == 0 and seen(kept, registry)["unowned"] == 0
    assert kept.subject_of == {} and kept.due == {} and not kept.overdue(now=NOW)
