"""What the benchmarks share: their own topics, processes awaited by condition, memory, percentiles."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from streams import config, topics  # noqa: E402
from tests.kafka import Topics  # noqa: E402
from tests.processes import scrape, wait_for  # noqa: E402

__all__ = ["ROOT", "batch_steps", "broker_pid", "cpu_seconds", "drop_topics", "fresh_topics", "pct", "rss_mb", "start",
           "worker_overrides"]


def fresh_topics(bootstrap: str, prefix: str) -> tuple[config.Settings, str]:
    """carewatch's topics under a prefix of the run's own; returns the settings and the events topic."""
    settings = config.load(environ={"CAREWATCH_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
                                    "CAREWATCH_KAFKA__TOPIC_PREFIX": prefix})
    topics.ensure(settings)
    return settings, topics.name(settings, topics.EVENTS)


def drop_topics(bootstrap: str, *starting: str) -> None:
    """Delete the run's topics (names starting with any of `starting`): a broker that gathers thousands of
    partitions from earlier runs answers slower, and later runs would measure that."""
    Topics(bootstrap=bootstrap, prefix="").delete(*starting)


def worker_overrides(parser: argparse.ArgumentParser) -> None:
    """`--worker KEY=VALUE` (repeatable): a setting of the config's worker section, to measure a trade-off."""
    def pair(text: str) -> tuple[str, object]:
        key, _, value = text.partition("=")
        return key, yaml.safe_load(value)

    parser.add_argument("--worker", type=pair, action="append", default=[], metavar="KEY=VALUE",
                        help="a worker setting for this run, e.g. batch_max=100")


def start(command: list[str], *, ready_url: str, log: Path, timeout: float = 120) -> subprocess.Popen:
    """Start a process and return once `ready_url` answers 200; fail naming its log if it exits first."""
    process = subprocess.Popen(command, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"process exited; see {log}")
        try:
            return httpx.get(ready_url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ready, timeout=timeout, what=ready_url, interval=0.2)
    return process


def _with_children(pid: int) -> list[int]:
    """A process and its children (the worker's pipeline process), from /proc."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [pid, *(int(child) for child in children.read_text().split())] if children.exists() else [pid]


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children."""
    return sum(_rss(p) for p in _with_children(pid))


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU time (user and system) a process, and its children, have used so far: what an event costs, a second
    view of a run beside its events a second (on this shared machine both move with the hour). The worker's
    children are its pipeline's process: the two take turns on the machine's cores with the broker."""
    own, *children = _with_children(pid)
    return _cpu(own), sum(_cpu(p) for p in children)


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except FileNotFoundError:  # a child that just ended
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def broker_pid() -> int | None:
    """The local Kafka broker's process (`make up`), to count its CPU beside a consumer's; None if not found."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"kafka.Kafka" in (entry / "cmdline").read_bytes():
                    return int(entry.name)
            except OSError:
                continue
    return None


def _rss(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    """The q-quantile by rank (no interpolation)."""
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def batch_steps(url: str) -> dict[str, float]:
    """The worker's own account of a batch: mean ms per step, and mean events per batch."""
    names = [f"carewatch_ingest_batch_{metric}_{part}" for metric in ("seconds", "events") for part in ("sum", "count")]
    samples = scrape(url + "?" + "&".join(f"name[]={name}" for name in names))
    steps = {}
    for step in ("waited", "processed", "delivered", "stored"):
        labels = (("step", step),)
        count = samples[("carewatch_ingest_batch_seconds_count", labels)]
        steps[step] = 1000 * samples[("carewatch_ingest_batch_seconds_sum", labels)] / max(count, 1)
    count = samples[("carewatch_ingest_batch_events_count", ())]
    steps["events"] = samples[("carewatch_ingest_batch_events_sum", ())] / max(count, 1)
    return steps
