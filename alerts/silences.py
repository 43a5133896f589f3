"""Silences: mute non-safety alerts of a subject (glob) or a care team until a moment.

A silence never mutes an alert a safety rule raised (CONTRACT §2). A muted
alert is still kept and audited (who silenced it, until when); it is only
not notified.
"""

from __future__ import annotations

import fnmatch
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from .alert import is_safety
from .config import SUBJECT_PATTERN_HELP, Duration, SilenceConfig, SubjectPattern

__all__ = ["Silence", "from_config", "from_request", "silencing"]

_DURATION = TypeAdapter(Duration)
_SUBJECT = TypeAdapter(SubjectPattern)
#: the longest silence the API makes: a forgotten silence must not hide a person for months
MAX_SILENCE = 30 * 86400


@dataclass(frozen=True, slots=True, kw_only=True)
class Silence:
    id: str
    until: float
    subject: str | None = None
    care_team: str | None = None
    created_by: str = "config"
    comment: str = ""
    created_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Silence:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def expired(self, *, now: float) -> Silence:
        return replace(self, until=min(self.until, now))

    def matches(self, alert: dict[str, Any]) -> bool:
        if self.subject is not None and not fnmatch.fnmatchcase(alert["subject"], self.subject):
            return False
        return self.care_team is None or self.care_team == alert["care_team"]


def from_config(silences: Iterable[SilenceConfig]) -> list[Silence]:
    return [Silence(id=f"config-{i}", until=s.until.timestamp(), subject=s.subject, care_team=s.care_team,
                    comment=s.comment) for i, s in enumerate(silences)]


def from_request(body: Any, *, team: str, who: str, now: float) -> Silence:
    """A silence made through the API by `who` of `team`: always scoped to that team. ValueError names the field."""
    if not isinstance(body, dict):
        raise ValueError("body: expected a JSON object")
    unknown = set(body) - {"subject", "until", "duration", "comment"}
    if unknown:
        raise ValueError(f"{sorted(unknown)[0]}: unknown field")
    subject = body.get("subject")
    if subject is not None:
        try:
            subject = _SUBJECT.validate_python(subject, strict=True)
        except ValidationError:
            raise ValueError(f"subject: expected {SUBJECT_PATTERN_HELP}") from None
    comment = body.get("comment", "")
    if not isinstance(comment, str) or len(comment) > 500:
        raise ValueError("comment: expected text of at most 500 characters")
    if ("until" in body) == ("duration" in body):
        raise ValueError("until: give exactly one of until (RFC 3339) and duration (such as 2h)")
    try:
        if "until" in body:
            until = datetime.fromisoformat(str(body["until"]).replace("Z", "+00:00"))
            if until.tzinfo is None:
                raise ValueError
            end = until.timestamp()
        else:
            end = now + _DURATION.validate_python(body["duration"])
    except (ValueError, ValidationError):
        field = "until" if "until" in body else "duration"
        raise ValueError(f"{field}: expected {'an RFC 3339 time with a zone' if field == 'until' else 'a duration such as 30m or 2h'}") from None
    if not now < end <= now + MAX_SILENCE:
        raise ValueError(f"until: must be in the future and at most {MAX_SILENCE // 86400} days away")
    return Silence(id=f"sil-{uuid.uuid4().hex[:20]}", until=end, subject=subject, care_team=team, created_by=who,
                   comment=comment, created_at=now)


def silencing(alert: dict[str, Any], silences: Iterable[Silence], *, now: float) -> Silence | None:
    """The silence that mutes this alert now, if any; never one for a safety alert."""
    if is_safety(alert):
        return None
    return next((s for s in silences if s.until > now and s.matches(alert)), None)
