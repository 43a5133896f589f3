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

from alerts.config import SEVERITIES
from alerts.dispatch import Book
from alerts.escalation import DEADLINES
from alerts.metrics import AlertingMetrics
from alerts.routing import UNASSIGNED

__all__ = ["Held"]


class Held:
    def __init__(self, *, metrics: AlertingMetrics, teams: Iterable[str]) -> None:
        self._metrics = metrics
        self._teams = frozenset(teams) | {UNASSIGNED}
        self.subject_of: dict[str, str] = {}  # alert id -> subject
        self._ids_of: dict[str, set[str]] = {}  # subject -> alert ids in the book
        #: alert id -> (care team, severity, status, raised): what the console's inbox picks from without reading
        #: every case from the store
        self._summary: dict[str, tuple[str, str, str, float]] = {}
        self.due: dict[str, float] = {}  # subject -> next escalation deadline
        self._open: dict[str, Counter] = {}  # subject -> firing, unacknowledged alerts by severity
        self._firing: dict[str, list[tuple[str, float]]] = {}  # subject -> (severity, raised) of those alerts
        #: subject -> their alerts in care, not resolved, of a team the config does not name (none may take them)
        self._unowned: dict[str, int] = {}

    def track(self, subject: str, book: Book) -> None:
        """The person's book as just written (or read after a rebalance)."""
        for gone in self._ids_of.pop(subject, set()) - book.cases.keys():
            self.subject_of.pop(gone, None)
            self._summary.pop(gone, None)
        if book.cases:
            self._ids_of[subject] = set(book.cases)
        for identifier, case in book.cases.items():
            self.subject_of[identifier] = subject
            alert = case["alert"]
            self._summary[identifier] = (alert["care_team"], alert["severity"], alert["status"], case["raised"])
        due = book.next_due()
        if due is None:
            self.due.pop(subject, None)
        else:
            self.due[subject] = due
        before = self._open.pop(subject, Counter())
        firing = [(c["alert"]["severity"], c["raised"]) for c in book.cases.values()
                  if c["alert"]["status"] == "firing" and c["muted"] is None]
        now = Counter(severity for severity, _ in firing)
        self._firing.pop(subject, None)
        if now:
            self._open[subject] = now
            self._firing[subject] = firing
        for severity in set(before) | set(now):
            self._metrics.open.labels(severity).inc(now[severity] - before[severity])
        unowned = sum(1 for c in book.cases.values()
                      if c["alert"]["status"] != "resolved" and c["alert"]["care_team"] not in self._teams)
        self._metrics.unowned.inc(unowned - self._unowned.pop(subject, 0))
        if unowned:
            self._unowned[subject] = unowned

    def clear(self) -> None:
        """Forget everything: the books are read again (the partitions held changed)."""
        for mapping in (self.subject_of, self._ids_of, self._summary, self.due, self._open, self._firing,
                        self._unowned):
            mapping.clear()
        for severity in SEVERITIES:
            self._metrics.open.labels(severity).set(0)
        self._metrics.unowned.set(0)

    def overdue(self, *, now: float) -> Counter:
        """Firing, unacknowledged alerts past their severity's deadline, by severity."""
        return Counter(severity for alerts in self._firing.values() for severity, raised in alerts
                       if severity in DEADLINES and now - raised > DEADLINES[severity])

    def summaries(self, team: str) -> list[tuple[str, str, str, float]]:
        """(alert id, severity, status, raised) of the alerts in care held here of a team, and of the unassigned
        ones, which any team may take: from memory, so that a page reads from the store only the cases it shows."""
        return [(alert_id, severity, status, raised) for alert_id, (owner, severity, status, raised)
                in self._summary.items() if owner in (team, UNASSIGNED)]
