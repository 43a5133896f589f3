"""Dashboards as code: the committed JSON is what the code builds, and `carewatch grafana push` is idempotent."""

from __future__ import annotations

import json
import subprocess
import sys

from streams.dashboards import DIRECTORY, build, queries
from tests.infra.grafana_double import GrafanaDouble


def test_the_committed_dashboards_are_the_ones_the_code_builds():
    built = build()
    assert sorted(p.name for p in DIRECTORY.glob("*.json")) == sorted(built)
    for name, body in built.items():
        assert json.loads((DIRECTORY / name).read_text()) == body, f"run python -m streams.dashboards ({name})"


def test_no_panel_groups_or_filters_by_a_person():
    for body in build().values():
        for title, expr in queries(body):
            assert "subject" not in expr and "event_id" not in expr, title


def push(url: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streams.cli", "grafana", "push", "--url", url, "--token-env",
                           "GRAFANA_TOKEN", "--prometheus-url", "http://127.0.0.1:9090"],
                          capture_output=True, text=True, env=env, timeout=60)


def test_push_creates_everything_once_and_a_second_push_changes_nothing(monkeypatch):
    grafana = GrafanaDouble(token="glsa_test")
    env = {"GRAFANA_TOKEN": "glsa_test", "PATH": "/usr/bin:/bin"}
    try:
        first = push(grafana.url, env)
        assert first.returncode == 0, first.stderr
        assert "datasource carewatch-prometheus: created" in first.stdout
        assert "dashboard carewatch-pipeline: created" in first.stdout
        assert grafana.dashboards["carewatch-care"]["meta"]["folderUid"] == "carewatch"
        assert grafana.datasources["carewatch-prometheus"]["url"] == "http://127.0.0.1:9090"
        writes = list(grafana.writes)
        second = push(grafana.url, env)
        assert second.returncode == 0, second.stderr
        assert grafana.writes == writes, "a second push wrote to Grafana"
        assert set(second.stdout.split("\n")) - {""} == {
            "datasource carewatch-prometheus: unchanged", "folder carewatch: unchanged",
            "dashboard carewatch-pipeline: unchanged", "dashboard carewatch-care: unchanged"}
        refused = push(grafana.url, env | {"GRAFANA_TOKEN": "wrong"})
        assert refused.returncode == 1 and "Unauthorized" in refused.stderr
        missing = push(grafana.url, {"PATH": "/usr/bin:/bin"})
        assert missing.returncode == 2 and "GRAFANA_TOKEN is not set" in missing.stderr
    finally:
        grafana.stop()
