"""Session cookies and CSRF tokens: what signs in stays signed in, and nothing else does."""

from __future__ import annotations

import base64

import orjson
import pytest

from alerts.ack import Principal
from console.session import Sessions

KEY = b"k" * 32


def test_a_session_reads_back_until_it_expires():
    sessions = Sessions(key=KEY, ttl=60)
    session, cookie = sessions.issue(Principal("team-north", "alice"), now=1000)
    assert sessions.read(cookie, now=1059) == session
    assert session.principal == Principal("team-north", "alice")
    assert sessions.read(cookie, now=1060) is None


@pytest.mark.parametrize("cookie", [None, "", "abc", "abc.def", ".sig"])
def test_missing_or_malformed_cookies_are_no_session(cookie):
    assert Sessions(key=KEY, ttl=60).read(cookie, now=0) is None


def test_an_altered_cookie_or_another_key_is_no_session():
    sessions = Sessions(key=KEY, ttl=60)
    _, cookie = sessions.issue(Principal("team-south"), now=0)
    body, signature = cookie.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    forged = base64.urlsafe_b64encode(orjson.dumps(claims | {"t": "team-north"})).decode().rstrip("=")
    assert sessions.read(f"{forged}.{signature}", now=1) is None
    assert Sessions(key=b"x" * 32, ttl=60).read(cookie, now=1) is None
    assert sessions.read(cookie, now=1) is not None


def test_csrf_tokens_belong_to_one_session():
    sessions = Sessions(key=KEY, ttl=60)
    one, _ = sessions.issue(Principal("team-north"), now=0)
    two, _ = sessions.issue(Principal("team-north"), now=0)
    assert sessions.check_csrf(one, sessions.csrf(one))
    assert not sessions.check_csrf(one, sessions.csrf(two))
    assert not sessions.check_csrf(one, None) and not sessions.check_csrf(one, "")


def test_a_short_key_is_refused_in_config_terms():
    with pytest.raises(ValueError, match="console.session_secret_env"):
        Sessions(key=b"short", ttl=60)
