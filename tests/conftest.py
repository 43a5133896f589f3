"""Shared fixtures: one real Kafka broker per test session, and workers as real processes.

The broker is started by infra/kafka/kafka.sh (the same script as `make up`)
unless one already answers; a broker this session started is stopped at the
end. Each test gets its own topic prefix and consumer group, so tests share
the broker without seeing each other's records.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from hypothesis import settings

from tests.kafka import Topics
from tests.processes import Service, WorkerProcess, free_port

ROOT = Path(__file__).resolve().parent.parent

# CI explores the same examples every run, so a red build is reproducible.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_runtest_setup(item: pytest.Item) -> None:
    Service.started.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failed test that ran carewatch processes shows their logs: CI keeps nothing else of them."""
    report = (yield).get_result()
    if report.failed:
        for service in Service.started:
            report.sections.append((f"{service.command} {service.workdir.name}", service.report()))


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    bootstrap = os.environ.get("CAREWATCH_TEST_BOOTSTRAP")
    if bootstrap:
        yield bootstrap
        return
    script = ROOT / "infra" / "kafka" / "kafka.sh"
    started = subprocess.run([script, "status"], capture_output=True).returncode != 0
    if started:
        # A broker of the tests' own, on an empty data directory: thousands of partitions left by
        # earlier sessions made a restart (the chaos suite's broker scenario) outlast kafka.sh's wait.
        data = ROOT / ".data" / "kafka-tests"
        shutil.rmtree(data, ignore_errors=True)
        os.environ["CAREWATCH_KAFKA_DATA"] = str(data)  # also for the tests that stop and start it
        subprocess.run([script, "start"], check=True)
    yield "127.0.0.1:9092"
    if started:
        subprocess.run([script, "stop"], check=False)


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def topics(kafka_bootstrap: str, run_id: str) -> Topics:
    """carewatch's topics, created under a prefix of this test's own, and deleted after the test."""
    created = Topics(bootstrap=kafka_bootstrap, prefix=f"t{run_id}.")
    created.create()
    yield created
    created.delete(f"t{run_id}")  # and faust's own topics (t<run_id>-...): the broker stays small


@pytest.fixture
def worker_factory(tmp_path: Path, topics: Topics, run_id: str):
    """Start `carewatch worker` processes on this test's topics; all are stopped after the test."""
    started: list[WorkerProcess] = []

    def start(*, name: str = "w0", config: dict | None = None, data_dir: Path | None = None,
              args: tuple[str, ...] = ()) -> WorkerProcess:
        worker = WorkerProcess(
            root=ROOT,
            workdir=tmp_path / name,
            bootstrap=topics.bootstrap,
            prefix=topics.prefix,
            app_id=f"t{run_id}",
            port=free_port(),
            extra=config or {},
            data_dir=data_dir,
            args=args,
        )
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
