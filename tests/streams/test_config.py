"""Configuration: defaults, the contract's example, environment overrides, exact errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from streams.config import load
from streams.exceptions import ConfigError

TOKEN_SHA = hashlib.sha256(b"team-north-token").hexdigest()

CONTRACT_EXAMPLE = f"""
kafka:
  bootstrap_servers: localhost:9092
care_teams:
  team-north:
    tokens_sha256: ["{TOKEN_SHA}"]
    members:
      alice: {{token_sha256: "{TOKEN_SHA}"}}
    subjects: ["p-*"]
channels:
  north-hook:
    type: webhook
    url: http://127.0.0.1:8099/hook
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
routes:
  - match: {{care_team: team-north}}
    channels: [north-hook]
  - match: {{}}
    channels: [north-hook]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "carewatch.yaml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str, environ=None) -> str:
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, text), environ=environ or {})
    return str(info.value)


def test_every_key_has_a_default():
    settings = load(environ={})
    assert settings.kafka.bootstrap_servers == "localhost:9092"
    assert settings.web.port == 6066
    assert settings.gateway.port == 8080
    assert settings.ingest.dedupe_window == 86400
    assert settings.ingest.consent_required is True
    assert settings.topics.events_partitions == 12
    assert settings.public_url == "http://127.0.0.1:6066"
    assert settings.routes[-1].match.care_team is None  # a catch-all, to the console


def test_the_contract_example_is_accepted(tmp_path):
    settings = load(write(tmp_path, CONTRACT_EXAMPLE), environ={})
    assert settings.care_teams["team-north"].members["alice"].token_sha256 == TOKEN_SHA
    assert settings.routes[0].channels == ["north-hook"]
    assert settings.channels["north-hook"].type == "webhook"


def test_environment_overrides_the_file(tmp_path):
    path = write(tmp_path, "web: {port: 7000}\ningest: {dedupe_window: 1h}\n")
    settings = load(path, environ={"CAREWATCH_WEB__PORT": "7100", "CAREWATCH_KAFKA__BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
                                   "CAREWATCH_INGEST__CONSENT_REQUIRED": "false", "OTHER": "x"})
    assert settings.web.port == 7100
    assert settings.kafka.bootstrap_servers == "k1:9092,k2:9092"
    assert settings.ingest.consent_required is False
    assert settings.ingest.dedupe_window == 3600


def test_durations_read_as_seconds(tmp_path):
    settings = load(write(tmp_path, "ingest: {dedupe_window: 500ms, max_future_skew: 2d}\ntopics: {raw_retention: 90}\n"),
                    environ={})
    assert settings.ingest.dedupe_window == 0.5
    assert settings.ingest.max_future_skew == 172800
    assert settings.topics.raw_retention == 90


def test_settings_are_frozen():
    settings = load(environ={})
    with pytest.raises(Exception):
        settings.web.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("web: {port: abc}", "web.port: input should be a valid integer, unable to parse string as an integer, got 'abc'"),
        ("web: {port: 70000}", "web.port: input should be less than or equal to 65535, got 70000"),
        ("kafka: {bootstrap: x}", "kafka.bootstrap: unknown key"),
        ("colour: blue", "colour: unknown key"),
        ("ingest: {dedupe_window: soon}", "ingest.dedupe_window: expected a duration such as 30s, 5m, 24h or 7d"),
        ("ingest: {dedupe_max_per_subject: 30000}",
         "ingest.dedupe_max_per_subject: input should be less than or equal to 20000, got 30000"),
        ("care_teams: {t: {tokens_sha256: [abc]}}",
         "care_teams.t.tokens_sha256[0]: expected the SHA-256 of a token as 64 lower-case hex digits"),
        ("care_teams: {t: {subjects: ['p-*', 'Jane Doe']}}",
         "care_teams.t.subjects[1]: expected a subject or a glob pattern such as p-7f* (letters, digits, _ - * ? [ ] !; "
         "at most 128), got 'Jane Doe'"),
        ("routes: [{match: {}, channels: [pager-x]}]", "routes[0].channels[0]: no channel named 'pager-x'"),
        ("routes: [{match: {care_team: nobody}, channels: [console]}, {match: {}, channels: [console]}]",
         "routes[0].match.care_team: no care team named 'nobody'"),
        ("routes: [{match: {severity: urgent}, channels: [console]}]",
         "routes: the last route must be a catch-all (match: {}) so that every alert is delivered somewhere"),
        ("routes: [{match: {}, channels: [console], fallback: sms}]", "routes[0].fallback: no channel named 'sms'"),
        ("routes: [{match: {}, channels: []}]", "routes[0].channels: list should have at least 1 item after validation, not 0"),
        ("channels: {a: {type: fax}}",
         "channels.a.type: input should be 'webhook', 'slack', 'teams', 'email', 'pagerduty' or 'console', got 'fax'"),
        ("gateway: {clients: {ios: {sources: ['app://x/*']}}}", "gateway.clients.ios.token_sha256: required key is missing"),
        ("channels: {h: {type: webhook, url: 'ftp://x', secret: whsec_AAAA}}\nroutes: [{match: {}, channels: [h]}]",
         "channels.h.url: String should match pattern '^https?://'"),
        ("channels: {h: {type: webhook, url: 'http://x', secret: 'shh'}}\nroutes: [{match: {}, channels: [h]}]",
         "channels.h.secret: a secret starts with whsec_ followed by base64"),
        ("channels: {h: {type: webhook, url: 'http://x', secret_env: CW_TEST_UNSET}}\nroutes: [{match: {}, channels: [h]}]",
         "channels.h: secret_env: environment variable CW_TEST_UNSET is not set"),
        ("channels: {m: {type: email, host: x, sender: a@b, to: [o@b], tls: true, starttls: true}}",
         "channels.m: starttls and tls exclude each other: starttls upgrades a plain connection"),
        ("channels: {p: {type: pagerduty, routing_key: k, colour: red}}", "channels.p.colour: Extra inputs are not permitted"),
    ],
)
def test_a_bad_file_names_the_bad_key(tmp_path, text, message):
    assert error_of(tmp_path, text) == message


def test_a_file_that_is_not_a_mapping(tmp_path):
    assert error_of(tmp_path, "- just\n- a list").endswith("carewatch.yaml: expected a mapping of sections at the top level")


def test_a_bad_override_names_the_variable_path(tmp_path):
    assert error_of(tmp_path, "", {"CAREWATCH_WEB__PORT": "many"}).startswith("web.port: input should be a valid integer")


def test_unreadable_and_unparseable_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        load(tmp_path / "missing.yaml", environ={})
    assert "not valid YAML" in error_of(tmp_path, "web: [unclosed")


def test_care_teams_override_detection_and_a_bad_override_names_its_key(tmp_path):
    settings = load(write(tmp_path, "care_teams: {north: {subjects: ['p-*'], detection: {watch_high: 0.3}}}"),
                    environ={})
    assert settings.detection_for("north").watch_high == 0.3
    assert settings.detection_for("unassigned").watch_high == settings.detection.watch_high
    assert error_of(tmp_path, "care_teams: {north: {detection: {colour: 1}}}") == \
        "care_teams.north.detection.colour: unknown key"
    assert error_of(tmp_path, "care_teams: {north: {detection: {watch_high: 0.9}}}") == \
        "care_teams.north.detection: watch_high must not be above urgent_high"
