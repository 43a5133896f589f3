"""Who owns a subject: the first care team whose glob patterns match it (CONTRACT §4)."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping

from .config import CareTeam

__all__ = ["UNASSIGNED", "owner"]

UNASSIGNED = "unassigned"


def owner(subject: str, care_teams: Mapping[str, CareTeam]) -> str:
    for name, team in care_teams.items():
        if any(fnmatch.fnmatchcase(subject, pattern) for pattern in team.subjects):
            return name
    return UNASSIGNED
