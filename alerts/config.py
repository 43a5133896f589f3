"""Who gets alerts: care teams, channels and routes, validated at load.

The top-level settings (streams/config.py) inherit this model, so the YAML
keeps `care_teams`, `channels` and `routes` at its top level (CONTRACT §4).
Cross-key rules speak in config terms: `routes[2].channels[0]: no channel
named 'pager-x'`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

__all__ = ["AlertingConfig", "AlertingSettings", "CareTeam", "ChannelConfig", "Duration", "EscalationPolicy",
           "Route", "RouteMatch", "Sha256", "SilenceConfig", "SubjectPattern"]

CHANNEL_TYPES = ("webhook", "slack", "teams", "email", "pagerduty", "console")
SEVERITIES = ("critical", "urgent", "watch")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(value: Any) -> Any:
    """Seconds as a number, or a string such as 500ms, 30s, 5m, 24h, 7d."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*", value)
        if not match:
            raise PydanticCustomError("duration", "expected a duration such as 30s, 5m, 24h or 7d")
        return float(match[1]) * _UNITS[match[2]]
    return value


Duration = Annotated[float, BeforeValidator(_duration), Field(ge=0)]


def _sha256(value: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise PydanticCustomError("sha256", "expected the SHA-256 of a token as 64 lower-case hex digits")
    return value


Sha256 = Annotated[str, AfterValidator(_sha256)]

#: the subject alphabet (CONTRACT §1) and fnmatch's * ? [ ] !: a pattern that could only ever be a name or an
#: address matches no subject, and is not kept
_SUBJECT_PATTERN = re.compile(r"[A-Za-z0-9_\-*?\[\]!]{1,128}")
SUBJECT_PATTERN_HELP = "a subject or a glob pattern such as p-7f* (letters, digits, _ - * ? [ ] !; at most 128)"


def _subject_pattern(value: str) -> str:
    if not _SUBJECT_PATTERN.fullmatch(value):
        raise PydanticCustomError("subject_pattern", f"expected {SUBJECT_PATTERN_HELP}")
    return value


SubjectPattern = Annotated[str, AfterValidator(_subject_pattern)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Member(_Strict):
    token_sha256: Sha256


class CareTeam(_Strict):
    """A team owns the subjects its glob patterns match (first team wins)."""

    tokens_sha256: list[Sha256] = []
    members: dict[str, Member] = {}
    subjects: list[SubjectPattern] = []
    #: overrides of the top-level `detection` settings for this team's people
    detection: dict[str, Any] = {}


class ChannelConfig(BaseModel):
    """A channel's type; each channel's own keys are checked by that channel."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: Literal[CHANNEL_TYPES]  # type: ignore[valid-type]


class RouteMatch(_Strict):
    care_team: str | None = None
    severity: Literal[SEVERITIES] | None = None  # type: ignore[valid-type]
    reason: str | None = None


class Route(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    match: RouteMatch
    channels: list[str] = Field(min_length=1)
    fallback: str | None = None
    continue_: bool = Field(default=False, alias="continue")
    escalation: str | None = None


class Step(_Strict):
    """Wait, then notify: these channels, or the route's own when none are named."""

    wait: Duration = Field(gt=0)
    channels: list[str] = []


class EscalationPolicy(_Strict):
    """Steps taken while an alert stays unacknowledged; the list runs `repeat` more times (null: until acked)."""

    steps: list[Step] = Field(min_length=1)
    repeat: int | None = Field(default=None, ge=0)


class SilenceConfig(_Strict):
    """Mutes non-safety alerts of a subject (glob) and/or a care team until a moment. Safety alerts are never muted."""

    subject: SubjectPattern | None = None
    care_team: str | None = None
    until: datetime
    comment: str = ""

    @model_validator(mode="after")
    def _matches_something(self) -> "SilenceConfig":
        if self.subject is None and self.care_team is None:
            raise ValueError("a silence names a subject pattern, a care team, or both")
        if self.until.tzinfo is None:
            raise ValueError("until: give a time zone, for example 2026-12-01T09:00:00Z")
        return self


class AlertingSettings(_Strict):
    #: `watch` alerts for channels people read wait this long to go out together as one digest per team
    digest_window: Duration = 15 * 60
    #: at most this many non-safety alerts per person are notified per `repeat_window` (the rest are audited)
    repeat_cap: int = Field(default=3, ge=1)
    repeat_window: Duration = 24 * 3600
    #: one delivery: tries in all, and no retry starts later than `retry_budget` after the first
    retry_attempts: int = Field(default=8, ge=1)
    retry_budget: Duration = Field(default=600, gt=0)
    retry_base: Duration = Field(default=1, gt=0)
    retry_cap: Duration = Field(default=120, gt=0)
    #: resolved alerts are remembered this long (to answer 409) and then forgotten
    resolved_retention: Duration = 30 * 86400
    #: silences made through the API are deleted from the silences topic this long after they end (the audit
    #: trail keeps who made them and until when), so that it does not grow with every silence ever made
    silence_retention: Duration = 5 * 86400
    #: how often escalation deadlines and digest windows are checked
    tick: Duration = Field(default=1, gt=0)
    #: how long the worker's alerting agent waits for more records after the first before it applies them together
    #: (each application waits for two round trips to the broker: its audit records, then the books' changelog)
    batch_wait: Duration = Field(default=0.005, ge=0, le=0.1)


def _default_channels() -> dict[str, ChannelConfig]:
    return {"console": ChannelConfig(type="console")}


def _default_routes() -> list[Route]:
    return [Route(match=RouteMatch(), channels=["console"])]


class AlertingConfig(_Strict):
    care_teams: dict[str, CareTeam] = {}
    channels: dict[str, ChannelConfig] = Field(default_factory=_default_channels)
    routes: list[Route] = Field(default_factory=_default_routes)
    escalations: dict[str, EscalationPolicy] = {}
    silences: list[SilenceConfig] = []
    alerting: AlertingSettings = AlertingSettings()

    @model_validator(mode="after")
    def _routes_resolve(self) -> "AlertingConfig":
        from .channels import check  # each channel checks its own keys

        for name, channel in self.channels.items():
            try:
                check(name, channel.model_dump())
            except ValueError as exc:
                raise PydanticCustomError("config", str(exc)) from None
        if "unassigned" in self.care_teams:
            raise PydanticCustomError("config", "care_teams.unassigned: the name is reserved for subjects no team owns")
        for i, route in enumerate(self.routes):
            for j, name in enumerate(route.channels):
                if name not in self.channels:
                    raise PydanticCustomError("config", f"routes[{i}].channels[{j}]: no channel named '{name}'")
            if route.fallback is not None and route.fallback not in self.channels:
                raise PydanticCustomError("config", f"routes[{i}].fallback: no channel named '{route.fallback}'")
            if route.escalation is not None and route.escalation not in self.escalations:
                raise PydanticCustomError("config", f"routes[{i}].escalation: no escalation policy named '{route.escalation}'")
            team = route.match.care_team
            if team is not None and team != "unassigned" and team not in self.care_teams:
                raise PydanticCustomError("config", f"routes[{i}].match.care_team: no care team named '{team}'")
        for name, policy in self.escalations.items():
            for i, step in enumerate(policy.steps):
                for j, channel in enumerate(step.channels):
                    if channel not in self.channels:
                        raise PydanticCustomError(
                            "config", f"escalations.{name}.steps[{i}].channels[{j}]: no channel named '{channel}'")
        for i, silence in enumerate(self.silences):
            if silence.care_team not in (None, "unassigned") and silence.care_team not in self.care_teams:
                raise PydanticCustomError("config", f"silences[{i}].care_team: no care team named '{silence.care_team}'")
        if not self.routes or self.routes[-1].match != RouteMatch():
            raise PydanticCustomError(
                "config",
                "routes: the last route must be a catch-all (match: {}) so that every alert is delivered somewhere",
            )
        return self
