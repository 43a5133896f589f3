"""The operator rules: promtool checks and unit tests, then a real Prometheus scraping a live worker."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import httpx
import orjson
import pytest
import yaml

from models.simulator import CohortConfig, simulate
from streams.dashboards import build, queries
from streams.publish import Publisher
from streams.topics import EVENTS
from tests.factory import event
from tests.processes import GatewayProcess, free_port, wait_for

PROMETHEUS = Path(__file__).resolve().parents[2] / "infra" / "prometheus"
RULES = PROMETHEUS / "rules" / "carewatch.yml"


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: `make setup` installs Debian's prometheus package"
    return path


def run(*args: str, cwd: Path = PROMETHEUS) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_config_and_rules_pass_promtool_and_their_unit_tests():
    assert "SUCCESS" in run(tool("promtool"), "check", "config", "prometheus.yml")
    assert "SUCCESS" in run(tool("promtool"), "check", "rules", "rules/carewatch.yml")
    assert "SUCCESS" in run(tool("promtool"), "test", "rules", "carewatch.test.yml", cwd=PROMETHEUS / "tests")


def rule_expressions() -> list[tuple[str, str]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [(rule.get("record") or rule["alert"], rule["expr"]) for group in groups for rule in group["rules"]]


@pytest.fixture
def prometheus(tmp_path):
    """Start a real Prometheus on loopback with a config that the test writes: returns (start, query)."""
    processes = []
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def start(targets: dict[str, list[str]]) -> None:
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": hosts}]}
                               for job, hosts in targets.items()],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        with (tmp_path / "prometheus.log").open("wb") as log:
            processes.append(subprocess.Popen(
                [tool("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}",
                 f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                stdout=log, stderr=subprocess.STDOUT))

        def ready() -> bool:
            try:
                return httpx.get(f"{base}/-/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=60, what="Prometheus to be ready")

    def query(expr: str) -> dict:
        return httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=10).json()

    yield start, query
    for process in processes:
        process.terminate()
        process.wait(30)


@pytest.mark.kafka
def test_a_live_worker_and_gateway_are_scraped_every_rule_evaluates_and_every_panel_has_data(
        prometheus, worker_factory, topics, tmp_path):
    start, query = prometheus
    worker = worker_factory(config={"worker": {"stall_timeout": 4}})  # the watchdog (and lag gauges) every second
    gateway = GatewayProcess(root=worker.root, workdir=tmp_path / "gateway", bootstrap=topics.bootstrap,
                             prefix=topics.prefix, port=free_port(),
                             clients={"app": {"token_sha256": hashlib.sha256(b"app-token").hexdigest()}})
    gateway.start()
    try:
        start({"carewatch-worker": [worker.url.removeprefix("http://")],
               "carewatch-gateway": [gateway.url.removeprefix("http://")]})
        cohort = simulate(CohortConfig(people=20, days=20, seed=7, episode_share=0.5))
        lines = [orjson.dumps(e) for e in cohort.events()]
        with Publisher(bootstrap_servers=topics.bootstrap, topic=topics.name(EVENTS)) as publisher:
            assert all(r.ok for r in publisher.publish_many(lines))
        crisis = [event("consent", subject="p-prom01", event_id="prom-c"),  # one alert at least, over HTTP
                  event("survey", subject="p-prom01", event_id="prom-1", instrument="phq9",
                        items=[1, 1, 1, 1, 1, 1, 1, 1, 3])]
        assert httpx.post(f"{gateway.url}/v1/events", json=crisis, timeout=20,
                          headers={"Authorization": "Bearer app-token"}).status_code == 202
        worker.wait_outcomes(len(lines) + len(crisis))
        wait_for(lambda: (r := query("sum(carewatch_ingest_events_total)")["data"]["result"])
                 and float(r[0]["value"][1]) >= len(lines) + len(crisis), timeout=60,
                 what="Prometheus to scrape every outcome")
        wait_for(lambda: {r["metric"]["job"]: r["value"][1] for r in query("up")["data"]["result"]} == {
            "carewatch-worker": "1", "carewatch-gateway": "1"}, timeout=30, what="both targets scraped and up")
        for name, expr in rule_expressions():
            answer = query(expr)
            assert answer["status"] == "success", (name, answer)
        wait_for(lambda: query("carewatch:ingest_events:rate5m")["data"]["result"], timeout=30,
                 what="a recording rule to have a series")
        for dashboard in build().values():
            for title, expr in queries(dashboard):
                wait_for(lambda: query(expr)["data"]["result"], timeout=30,
                         what=f"panel '{title}' of {dashboard['uid']} to return a series: {expr}")
    finally:
        gateway.stop()
