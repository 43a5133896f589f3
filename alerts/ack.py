"""The acknowledge API's rules (CONTRACT §3): who may act, and what each action answers.

Tokens are checked against the SHA-256 hashes in `care_teams` in constant
time (every hash is compared, whatever matched). The order of answers is
the contract's: 401 without a valid token, 404 for an unknown alert, 403
when the token's team does not own it, 409 for any action on a resolved
alert, else 200 (acknowledging an acknowledged alert changes nothing).
Alerts of `unassigned` subjects may be taken by any team: someone must.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import CareTeam
from .routing import UNASSIGNED

__all__ = ["ACTIONS", "NOTE_CHARS", "Principal", "Tokens", "answer", "apply"]

ACTIONS = {"ack": "acknowledged", "resolve": "resolved"}
#: the most of an action's note that is kept (on the audit trail); the rest is never sent on
NOTE_CHARS = 500


@dataclass(frozen=True, slots=True)
class Principal:
    team: str
    member: str | None = None

    @property
    def who(self) -> str:
        """The audit's `who`: the member, or the team for a team token."""
        return f"{self.team}/{self.member}" if self.member else self.team


class Tokens:
    def __init__(self, care_teams: Mapping[str, CareTeam]) -> None:
        self._hashes: list[tuple[bytes, Principal]] = []
        for name, team in care_teams.items():
            self._hashes += [(bytes.fromhex(h), Principal(name)) for h in team.tokens_sha256]
            self._hashes += [(bytes.fromhex(m.token_sha256), Principal(name, member))
                             for member, m in team.members.items()]

    def knows(self, principal: Principal) -> bool:
        """Whether the configuration still has this team or member (a session outlives no removal)."""
        return any(known == principal for _, known in self._hashes)

    def authenticate(self, authorization: str | None) -> Principal | None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = hashlib.sha256(token.strip().encode()).digest()
        found = None
        for expected, principal in self._hashes:  # no early exit: the time does not depend on which matched
            if hmac.compare_digest(digest, expected):
                found = principal
        return found


def answer(case: Mapping[str, Any] | None, principal: Principal | None, action: str) -> int:
    """The status code for `action` on `case` (None: unknown alert) by `principal` (None: no valid token)."""
    if principal is None:
        return 401
    if case is None:
        return 404
    team = case["alert"]["care_team"]
    if team != principal.team and team != UNASSIGNED:
        return 403
    if case["alert"]["status"] == "resolved":
        return 409
    if action not in ACTIONS:
        return 404
    return 200


def apply(status: str, action: str) -> str | None:
    """The new status, or None when the action changes nothing (ack of an acknowledged alert)."""
    new = ACTIONS[action]
    return None if new == status else new
