"""What the alerting agent knows, in memory, of the books in the partitions its worker holds.

Kept as each book is written and rebuilt after every change of assignment, so
that the timer, the ack API and the console answer without reading every book
from the store: which person's book holds an alert, each person's next
escalation deadline, what is firing and unacknowledged, and what no care team
may take.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

from alerts.config import SEVERITIES
from alerts.dispatch import Book
from alerts.escalation import DEADLINES
from alerts.metrics import AlertingMetrics
from alerts.routing import UNASSIGNED

__all__ = ["Held"]


class _Case(NamedTuple):
    """What the indexes hold of one case, to take it back out when the case changes."""

    severity: str
    #: firing, unacknowledged and not muted: counted open, and overdue past its severity's deadline
    firing: bool
    #: in care, not resolved, of a team the config does not name
    unowned: bool


class Held:
    def __init__(self, *, metrics: AlertingMetrics, teams: Iterable[str]) -> None:
        self._metrics = metrics
        self._teams = frozenset(teams) | {UNASSIGNED}
        self.subject_of: dict[str, str] = {}  # alert id -> subject
        #: subject -> alert id -> what the indexes below hold of that case
        self._cases: dict[str, dict[str, _Case]] = {}
        #: alert id -> (care team, severity, status, raised): what the console's inbox picks from without reading
        #: every case from the store
        self._summary: dict[str, tuple[str, str, str, float]] = {}
        self.due: dict[str, float] = {}  # subject -> next escalation deadline
        #: subject -> alert id -> (severity, raised) of their firing, unacknowledged, unmuted alerts
        self._firing: dict[str, dict[str, tuple[str, float]]] = {}

    def track(self, subject: str, book: Book, *, changed: Iterable[str] | None = None) -> None:
        """The person's book as just written: `changed` names the cases written or dropped (None: every case, as
        for a book just read). Only those are looked at: a book keeps every case in care, and a write touches few."""
        cases = self._cases.setdefault(subject, {})
        firing = self._firing.setdefault(subject, {})
        opened: Counter = Counter()
        unowned = 0
        if changed is None:
            changed = cases.keys() | book.cases.keys()
        for identifier in changed:
            before = cases.pop(identifier, None)
            if before is not None:
                if before.firing:
                    del firing[identifier]
                    opened[before.severity] -= 1
                unowned -= before.unowned
            case = book.cases.get(identifier)
            if case is None:
                self.subject_of.pop(identifier, None)
                self._summary.pop(identifier, None)
                continue
            alert = case["alert"]
            after = cases[identifier] = _Case(
                severity=alert["severity"],
                firing=alert["status"] == "firing" and case["muted"] is None,
                unowned=alert["status"] != "resolved" and alert["care_team"] not in self._teams)
            self.subject_of[identifier] = subject
            self._summary[identifier] = (alert["care_team"], alert["severity"], alert["status"], case["raised"])
            if after.firing:
                firing[identifier] = (after.severity, case["raised"])
                opened[after.severity] += 1
            unowned += after.unowned
        for severity, change in opened.items():
            if change:
                self._metrics.open.labels(severity).inc(change)
        if unowned:
            self._metrics.unowned.inc(unowned)
        if not cases:
            del self._cases[subject]
        if not firing:
            del self._firing[subject]
        due = book.next_due()
        if due is None:
            self.due.pop(subject, None)
        else:
            self.due[subject] = due

    def clear(self) -> None:
        """Forget everything: the books are read again (the partitions held changed)."""
        for mapping in (self.subject_of, self._cases, self._summary, self.due, self._firing):
            mapping.clear()
        for severity in SEVERITIES:
            self._metrics.open.labels(severity).set(0)
        self._metrics.unowned.set(0)

    def overdue(self, *, now: float) -> Counter:
        """Firing, unacknowledged alerts past their severity's deadline, by severity."""
        return Counter(severity for alerts in self._firing.values() for severity, raised in alerts.values()
                       if severity in DEADLINES and now - raised > DEADLINES[severity])

    def summaries(self, team: str) -> list[tuple[str, str, str, float]]:
        """(alert id, severity, status, raised) of the alerts in care held here of a team, and of the unassigned
        ones, which any team may take: from memory, so that a page reads from the store only the cases it shows."""
        return [(alert_id, severity, status, raised) for alert_id, (owner, severity, status, raised)
                in self._summary.items() if owner in (team, UNASSIGNED)]
