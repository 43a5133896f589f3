"""Silences: mute non-safety alerts of a subject (glob) or a care team until a moment.

A silence never mutes an alert a safety rule raised (CONTRACT §2). A muted
alert is still kept and audited (who silenced it, until when); it is only
not notified.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .alert import is_safety
from .config import SilenceConfig

__all__ = ["Silence", "from_config", "silencing"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Silence:
    id: str
    until: float
    subject: str | None = None
    care_team: str | None = None
    created_by: str = "config"
    comment: str = ""

    def matches(self, alert: dict[str, Any]) -> bool:
        if self.subject is not None and not fnmatch.fnmatchcase(alert["subject"], self.subject):
            return False
        return self.care_team is None or self.care_team == alert["care_team"]


def from_config(silences: Iterable[SilenceConfig]) -> list[Silence]:
    return [Silence(id=f"config-{i}", until=s.until.timestamp(), subject=s.subject, care_team=s.care_team,
                    comment=s.comment) for i, s in enumerate(silences)]


def silencing(alert: dict[str, Any], silences: Iterable[Silence], *, now: float) -> Silence | None:
    """The silence that mutes this alert now, if any; never one for a safety alert."""
    if is_safety(alert):
        return None
    return next((s for s in silences if s.until > now and s.matches(alert)), None)
