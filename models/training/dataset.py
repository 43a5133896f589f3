"""Training data from a simulated cohort, built with the serving feature code.

Each person's events are replayed in arrival order through
`models.features.PersonFeatures`, exactly as the worker sees them; a row is
the feature vector after each event. Labels come from the simulator's
ground truth. SYNTHETIC DATA: nothing here describes real people.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from ..features import PersonFeatures, day_of
from ..simulator import Cohort, Person

__all__ = ["Rows", "build"]

#: a row is "deteriorating" from this severity on (severity runs 0 to 1)
POSITIVE_SEVERITY = 0.2


@dataclass
class Rows:
    features: list[list[float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    texts: list[str] = field(default_factory=list)
    text_labels: list[int] = field(default_factory=list)
    text_langs: list[str] = field(default_factory=list)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.features, dtype=np.float32), np.asarray(self.labels, dtype=np.int64)


def _day_index(person: Person, start: datetime, timestamp: float) -> int:
    return day_of(timestamp) - day_of(start.timestamp())


def build(cohort: Cohort) -> Rows:
    people = {p.subject: p for p in cohort.people}
    states: dict[str, PersonFeatures] = {}
    seen: set[tuple[str, str]] = set()
    rows = Rows()
    start = cohort.config.start
    for event in cohort.events():
        key = (event["source"], event["id"])
        if key in seen:  # the worker drops repeats before features; so does training
            continue
        seen.add(key)
        kind = event["type"].split(".")[2]
        if kind == "consent":
            continue
        person = people[event["subject"]]
        timestamp = datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()
        state = states.setdefault(person.subject, PersonFeatures())
        state.observe(kind, event["data"], timestamp)
        day = _day_index(person, start, timestamp)
        positive = int(person.severity(day) >= POSITIVE_SEVERITY)
        rows.features.append(state.vector(timestamp))
        rows.labels.append(positive)
        rows.subjects.append(person.subject)
        rows.groups["lang"].append(person.lang)
        rows.groups["device"].append(person.device)
        if kind == "text":
            rows.texts.append(event["data"]["text"])
            rows.text_labels.append(positive)
            rows.text_langs.append(person.lang)
    return rows
