"""Signed-in sessions: a cookie naming who signed in, signed so it cannot be forged, and its CSRF token.

Sign-in takes the same tokens as the ack API (CONTRACT §4, checked by
`alerts.ack.Tokens`); the cookie then carries the team, the member (so the
audit names the person) and an expiry, with an HMAC-SHA256 over them. It
never carries the token. Each session has a random nonce; the CSRF token of
every form is an HMAC of that nonce, so a page of another site can neither
read nor guess it (and SameSite=Strict keeps the cookie off its requests).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import orjson

from alerts.ack import Principal

__all__ = ["COOKIE", "Session", "Sessions"]

COOKIE = "carewatch_session"


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    team: str
    member: str | None
    expires: float
    nonce: str

    @property
    def principal(self) -> Principal:
        return Principal(self.team, self.member)


class Sessions:
    """Issues and reads session cookies and CSRF tokens under one key."""

    def __init__(self, *, key: bytes, ttl: float) -> None:
        if len(key) < 16:
            raise ValueError("console.session_secret_env: the key must be at least 16 bytes")
        self._key = key
        self.ttl = ttl

    def issue(self, principal: Principal, *, now: float) -> tuple[Session, str]:
        session = Session(team=principal.team, member=principal.member, expires=now + self.ttl,
                          nonce=secrets.token_urlsafe(16))
        body = _b64(orjson.dumps({"t": session.team, "m": session.member, "e": session.expires, "n": session.nonce}))
        return session, f"{body}.{self._sign(b'session:' + body.encode())}"

    def read(self, cookie: str | None, *, now: float) -> Session | None:
        """The session a cookie names, or None: missing, forged, altered or expired."""
        body, _, signature = (cookie or "").partition(".")
        if not body or not hmac.compare_digest(signature, self._sign(b"session:" + body.encode())):
            return None
        try:
            data = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            session = Session(team=data["t"], member=data["m"], expires=float(data["e"]), nonce=data["n"])
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > now else None

    def csrf(self, session: Session) -> str:
        return self._sign(b"csrf:" + session.nonce.encode())

    def check_csrf(self, session: Session, token: str | None) -> bool:
        return hmac.compare_digest(self.csrf(session), token or "")

    def _sign(self, data: bytes) -> str:
        return _b64(hmac.new(self._key, data, hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
