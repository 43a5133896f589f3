"""Who gets alerts: care teams, channels and routes, validated at load.

The top-level settings (streams/config.py) inherit this model, so the YAML
keeps `care_teams`, `channels` and `routes` at its top level (CONTRACT §4).
Cross-key rules speak in config terms: `routes[2].channels[0]: no channel
named 'pager-x'`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

__all__ = ["AlertingConfig", "CareTeam", "ChannelConfig", "Route", "RouteMatch", "Sha256"]

CHANNEL_TYPES = ("webhook", "slack", "teams", "email", "pagerduty", "console")
SEVERITIES = ("critical", "urgent", "watch")


def _sha256(value: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise PydanticCustomError("sha256", "expected the SHA-256 of a token as 64 lower-case hex digits")
    return value


Sha256 = Annotated[str, AfterValidator(_sha256)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Member(_Strict):
    token_sha256: Sha256


class CareTeam(_Strict):
    """A team owns the subjects its glob patterns match (first team wins)."""

    tokens_sha256: list[Sha256] = []
    members: dict[str, Member] = {}
    subjects: list[str] = []
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


def _default_channels() -> dict[str, ChannelConfig]:
    return {"console": ChannelConfig(type="console")}


def _default_routes() -> list[Route]:
    return [Route(match=RouteMatch(), channels=["console"])]


class AlertingConfig(_Strict):
    care_teams: dict[str, CareTeam] = {}
    channels: dict[str, ChannelConfig] = Field(default_factory=_default_channels)
    routes: list[Route] = Field(default_factory=_default_routes)

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
            team = route.match.care_team
            if team is not None and team != "unassigned" and team not in self.care_teams:
                raise PydanticCustomError("config", f"routes[{i}].match.care_team: no care team named '{team}'")
        if not self.routes or self.routes[-1].match != RouteMatch():
            raise PydanticCustomError(
                "config",
                "routes: the last route must be a catch-all (match: {}) so that every alert is delivered somewhere",
            )
        return self
