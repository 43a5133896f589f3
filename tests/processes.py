"""carewatch processes for tests: started from the real CLI, awaited by condition."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll `condition` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """Samples of a /metrics page as {(name, sorted labels): value}."""
    text = httpx.get(url, timeout=5).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class Service:
    """A carewatch command run as a child process with its own config file."""

    command: str = ""
    #: every service started during the current test (conftest reports their logs when it fails)
    started: list[Service] = []

    def __init__(self, *, root: Path, workdir: Path, config: dict, args: tuple[str, ...] = ()) -> None:
        self.args = args
        self.root = root
        self.workdir = workdir
        self.config = config
        self.process: subprocess.Popen | None = None
        self.log_path = workdir / f"{self.command}.log"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        path = self.workdir / "carewatch.yaml"
        path.write_text(yaml.safe_dump(self.config))
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAREWATCH_")}
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", self.command, "--config", str(path), *self.args],
            cwd=self.root, stdout=self._log, stderr=subprocess.STDOUT, env=env,
        )
        Service.started.append(self)
        self.wait_ready()

    def wait_ready(self) -> None:
        raise NotImplementedError

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def report(self, *, lines: int = 40) -> str:
        """How the process ended (or that it runs), its warnings and errors, and its last lines."""
        state = ("never started" if self.process is None else "running" if self.alive()
                 else f"exited with {self.process.returncode}")
        log = self.log().splitlines()
        notable = [line for line in log if '"level":"error"' in line or '"level":"critical"' in line
                   or ('"level":"warning"' in line and "carewatch.console" not in line)]
        return "\n".join([f"{self.command} in {self.workdir}: {state}", "-- warnings and errors:", *notable[-lines:],
                          "-- last lines:", *log[-lines // 2:]])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.alive():
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process is not None:
            self._log.close()  # also for a process that exited by itself (a worker's exit for its supervisor)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


class WorkerProcess(Service):
    command = "worker"

    def __init__(self, *, root: Path, workdir: Path, bootstrap: str, prefix: str, app_id: str, port: int,
                 extra: dict, data_dir: Path | None = None, args: tuple[str, ...] = ()) -> None:
        config: dict[str, Any] = {
            "kafka": {"bootstrap_servers": bootstrap, "topic_prefix": prefix},
            # short session: a killed member leaves the group in seconds, not half a minute
            # a stalled worker is nudged within seconds (streams/agents/watchdog.py), as in production after 60 s
            "worker": {"app_id": app_id, "data_dir": str(data_dir or workdir / "data"), "session_timeout": 6,
                       "heartbeat_interval": 1, "stall_timeout": 5, "stall_exit": 30},
            "web": {"port": port},
        }
        for section, values in extra.items():
            if isinstance(values, dict):
                config.setdefault(section, {}).update(values)
            else:
                config[section] = values
        super().__init__(root=root, workdir=workdir, config=config, args=args)
        self.url = f"http://127.0.0.1:{port}"

    def wait_ready(self) -> None:
        def ready() -> bool:
            if not self.alive():
                raise AssertionError(f"worker exited early:\n{self.log()[-4000:]}")
            try:
                return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=90, what="the worker's /readyz")

    def metrics(self, *names: str) -> dict[tuple[str, tuple], float]:
        """The worker's samples; only those of `names` if given (a cheap scrape for tests that poll)."""
        query = "&".join(f"name[]={name}" for name in names)
        return scrape(f"{self.url}/metrics" + (f"?{query}" if query else ""))

    def assigned(self) -> set[int]:
        """The partitions of carewatch.events this worker holds now (empty while rebalancing)."""
        try:
            response = httpx.get(f"{self.url}/readyz", timeout=2)
        except httpx.HTTPError:
            return set()
        return set(response.json()["partitions"]) if response.status_code == 200 else set()

    def outcomes(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for (name, labels), value in self.metrics("carewatch_ingest_events_total").items():
            if name == "carewatch_ingest_events_total":
                outcome = dict(labels)["outcome"]
                totals[outcome] = totals.get(outcome, 0) + value
        return totals

    def wait_outcomes(self, total: int, *, timeout: float = 180) -> dict[str, float]:
        """Until every one of `total` records has its outcome."""
        return wait_for(lambda: (o := self.outcomes()) and sum(o.values()) >= total and o,
                        timeout=timeout, what=f"{total} outcomes from the worker", interval=0.25)


class GatewayProcess(Service):
    command = "gateway"

    def __init__(self, *, root: Path, workdir: Path, bootstrap: str, prefix: str, port: int, clients: dict,
                 extra: dict | None = None) -> None:
        config: dict[str, Any] = {
            "kafka": {"bootstrap_servers": bootstrap, "topic_prefix": prefix},
            "gateway": {"port": port, "clients": clients},
        }
        for section, values in (extra or {}).items():
            config.setdefault(section, {}).update(values)
        super().__init__(root=root, workdir=workdir, config=config)
        self.url = f"http://127.0.0.1:{port}"

    def wait_ready(self) -> None:
        def ready() -> bool:
            if not self.alive():
                raise AssertionError(f"gateway exited early:\n{self.log()[-4000:]}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=60, what="the gateway's /healthz")
