"""The chaos suite's size and its report.

`CAREWATCH_CHAOS=full` (what `make chaos` sets) runs every scenario at full
size: 100,000 events of poison, a minute of channel outage. Without it the
same scenarios run small, as part of `make test` and CI. With
`CAREWATCH_CHAOS_REPORT=path`, the suite writes its table there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

FULL = os.environ.get("CAREWATCH_CHAOS") == "full"


@dataclass(frozen=True)
class Scale:
    full: bool
    people: int  # the simulated cohort behind the scenarios
    days: int
    crowd: int  # the cohort of the crash scenarios: long enough for every kill to land mid-stream
    kills: int  # scenario 1: SIGKILLs in one run
    poison_events: int  # scenario 5: events in all
    outage: float  # scenario 3: seconds of each failure mode (503, refused, slow)


SCALE = Scale(full=True, people=160, days=100, crowd=120, kills=5, poison_events=100_000,
              outage=20.0) if FULL else \
    Scale(full=False, people=10, days=40, crowd=45, kills=3, poison_events=3_000, outage=3.0)

_ROWS: list[dict] = []


@pytest.fixture
def scale() -> Scale:
    return SCALE


@pytest.fixture
def report():
    """`report(scenario=..., events=..., lost=..., duplicated_alerts=..., recover=...)`: a row of the README table."""
    return lambda **row: _ROWS.append(row)


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001 - pytest's hook signature
    path = os.environ.get("CAREWATCH_CHAOS_REPORT")
    if not path or not _ROWS:
        return
    lines = [f"Chaos suite ({'full' if FULL else 'short'} size), every event and alert reconciled from the topics.",
             "", "| scenario | events | lost | duplicated alerts | alerts | time to recover |", "|---|---|---|---|---|---|"]
    for row in _ROWS:
        lines.append(f"| {row['scenario']} | {row['events']:,} | {row['lost']} | {row['duplicated_alerts']} | "
                     f"{row.get('alerts', '')} | {row.get('recover', '—')} |")
    Path(path).write_text("\n".join(lines) + "\n")
