"""Who owns a subject, and which routes an alert takes (CONTRACT §2, §4).

Care teams own subjects by glob pattern; the first team that matches wins,
and a subject no team owns is `unassigned`. Routes match on care team,
severity and reason code; the first match wins unless it says
`continue: true`; the list ends with a catch-all, so every alert has a route.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any

from .config import CareTeam, Route

__all__ = ["UNASSIGNED", "matching_routes", "owner"]

UNASSIGNED = "unassigned"


def owner(subject: str, care_teams: Mapping[str, CareTeam]) -> str:
    for name, team in care_teams.items():
        if any(fnmatch.fnmatchcase(subject, pattern) for pattern in team.subjects):
            return name
    return UNASSIGNED


def matching_routes(alert: Mapping[str, Any], routes: Sequence[Route]) -> list[Route]:
    """The routes an alert takes, in order: up to and including the first match without `continue`."""
    codes = {reason["code"] for reason in alert["reasons"]}
    taken = []
    for route in routes:
        match = route.match
        if match.care_team is not None and match.care_team != alert["care_team"]:
            continue
        if match.severity is not None and match.severity != alert["severity"]:
            continue
        if match.reason is not None and match.reason not in codes:
            continue
        taken.append(route)
        if not route.continue_:
            break
    return taken
