"""Ingest throughput: the carewatch worker beside a bare Faust agent that only counts.

In each round both read the same pre-filled topic (a fresh one per round,
with the same records) on the same broker, alternating over several
rounds, so the ratio holds on a noisy shared machine. Also times the broker's start on a fresh data directory.

    .venv/bin/python bench/ingest.py [--events 50000] [--rounds 3]

Needs Kafka on localhost:9092 (`make up`). All data is synthetic.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import orjson
import yaml
from kafka import KafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (ROOT, batch_steps, broker_pid, cpu_seconds, drop_topics, fresh_topics, pct, rss_mb,  # noqa: E402
                          start, worker_overrides)
from tests.factory import broken, event, random_valid  # noqa: E402
from tests.processes import free_port  # noqa: E402

BOOTSTRAP = os.environ.get("CAREWATCH_BENCH_BOOTSTRAP", "127.0.0.1:9092")


def fill(topic: str, n: int, rng: random.Random) -> int:
    """n records: consent for 90% of 2,000 people, every type, 1% invalid, 1% repeated."""
    t0 = datetime(2026, 10, 1, tzinfo=timezone.utc)
    subjects = [f"p-bench{i:05d}" for i in range(2_000)]
    records = [(s.encode(), orjson.dumps(event("consent", subject=s, source="app://bench/enrol",
                                                  when=t0 - timedelta(days=1), event_id=f"{s}-c")))
               for s in subjects[:1_800]]
    while len(records) < n:
        i = len(records)
        subject = rng.choice(subjects)
        e = random_valid(rng, subject=subject, source="app://bench/app",
                         when=t0 + timedelta(seconds=rng.randrange(30 * 86400)), event_id=f"b-{i}")
        roll = rng.random()
        if roll < 0.01:
            records.append((subject.encode(), broken(rng, e)[0]))
        elif roll < 0.02 and i > 2_000:
            records.append(records[rng.randrange(2_000, i)])
        else:
            records.append((subject.encode(), orjson.dumps(e)))
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=20, batch_size=512 * 1024,
                             max_request_size=4 * 1024 * 1024)
    for key, raw in records[:n]:
        producer.send(topic, value=raw, key=key)
    producer.flush()
    producer.close()
    return n



def measure(command: list[str], count_url: str, ready_url: str, n: int, count, account=None) -> dict:
    """Start a consumer process, time it from its first record to its n-th, stop it.

    `account`, if given, is called before the stop and its answer kept (the worker's own account of its batches)."""
    log = Path(tempfile.mkstemp(prefix="bench-", suffix=".log")[1])
    process = start(command, ready_url=ready_url, log=log)
    broker = broker_pid()
    try:
        samples: list[tuple[float, int]] = []
        cpu: list[tuple[float, float, float]] = []  # the consumer's, its children's and the broker's, at each sample
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            samples.append((time.perf_counter(), count(count_url)))
            cpu.append((*cpu_seconds(process.pid), sum(cpu_seconds(broker)) if broker else float("nan")))
            if samples[-1][1] >= n:
                break
            time.sleep(0.25)
        memory = rss_mb(process.pid)
        steps = account() if account else {}
    finally:
        process.terminate()
        process.wait(60)
    started = next(i for i, (_, c) in enumerate(samples) if c > 0)
    first = max(started - 1, 0)
    (t0, c0), (t1, c1) = samples[first], samples[-1]
    windows = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(samples[started:], samples[started + 1:])]
    return {"rate": (c1 - c0) / (t1 - t0), "windows": windows, "rss_mb": memory, "steps": steps,
            **{key: 1e6 * (cpu[-1][i] - cpu[first][i]) / (c1 - c0)
               for i, key in enumerate(("main_cpu_us", "children_cpu_us", "broker_cpu_us"))}}


def _cpu(measured: dict) -> float:
    """CPU µs an event cost the consumer's processes."""
    return measured["main_cpu_us"] + measured["children_cpu_us"]


def worker_count(url: str) -> int:
    text = httpx.get(url, timeout=5).text
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("carewatch_ingest_events_total{")))


def bare_count(url: str) -> int:
    return httpx.get(url, timeout=5).json()["count"]


def broker_start_seconds(rounds: int) -> list[float]:
    """`kafka.sh start` on a fresh data directory and other ports, until it answers metadata."""
    times = []
    for _ in range(rounds):
        data = Path(tempfile.mkdtemp(prefix="bench-kafka-"))
        env = os.environ | {"CAREWATCH_KAFKA_PORT": str(free_port()), "CAREWATCH_KAFKA_CONTROLLER_PORT": str(free_port()),
                            "CAREWATCH_KAFKA_DATA": str(data)}
        started = time.perf_counter()
        subprocess.run([ROOT / "infra/kafka/kafka.sh", "start"], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
        subprocess.run([ROOT / "infra/kafka/kafka.sh", "stop"], env=env, check=True, capture_output=True)
        shutil.rmtree(data, ignore_errors=True)
    return times



def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    worker_overrides(parser)
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    results: dict[str, list[dict]] = {"bare": [], "worker": []}
    for r in range(args.rounds):
        # Each round on topics of its own, filled with the same records: a worker reading the alert topics
        # of earlier rounds would carry their alerts too (the worker's rounds got slower and slower that way).
        prefix = f"bench{run}r{r}."
        _, events_topic = fresh_topics(BOOTSTRAP, prefix)
        started = time.perf_counter()
        fill(events_topic, args.events, random.Random(7))
        print(f"filled {events_topic} with {args.events:,} records in {time.perf_counter() - started:.1f} s",
              flush=True)
        port = free_port()
        bare = [sys.executable, str(ROOT / "bench/bare_faust.py"), BOOTSTRAP, events_topic, f"bare-{run}-{r}",
                str(port), str(work / f"bare{r}")]
        results["bare"].append(measure(bare, f"http://127.0.0.1:{port}/count", f"http://127.0.0.1:{port}/readyz",
                                       args.events, bare_count))
        port = free_port()
        path = work / f"worker{r}.yaml"
        path.write_text(yaml.safe_dump({
            "kafka": {"bootstrap_servers": BOOTSTRAP, "topic_prefix": prefix},
            "worker": {"app_id": f"worker-{run}-{r}", "data_dir": str(work / f"worker{r}"), **dict(args.worker)},
            "web": {"port": port},
        }))
        worker = [sys.executable, "-m", "streams.cli", "worker", "--config", str(path), "--loglevel", "warning"]
        # only the counter the benchmark reads: the whole page (about 7 ms a scrape) 4 times a second is ~3% of a core
        counter = f"http://127.0.0.1:{port}/metrics?name[]=carewatch_ingest_events_total"
        results["worker"].append(measure(worker, counter, f"http://127.0.0.1:{port}/readyz", args.events,
                                         worker_count, account=lambda: batch_steps(f"http://127.0.0.1:{port}/metrics")))
        steps = results["worker"][-1]["steps"]
        print(f"round {r + 1}: bare {results['bare'][-1]['rate']:,.0f}/s, "
              f"worker {results['worker'][-1]['rate']:,.0f}/s; worker's batches: {steps['events']:.0f} events, "
              + ", ".join(f"{step} {steps[step]:.1f} ms" for step in ("processed", "delivered", "stored"))
              + f"; CPU µs/event bare {_cpu(results['bare'][-1]):.0f}, worker {_cpu(results['worker'][-1]):.0f}"
              + f" (main {results['worker'][-1]['main_cpu_us']:.0f}, pipeline {results['worker'][-1]['children_cpu_us']:.0f})"
              + f" (broker {results['bare'][-1]['broker_cpu_us']:.0f}, {results['worker'][-1]['broker_cpu_us']:.0f})",
              flush=True)
        drop_topics(BOOTSTRAP, prefix, f"worker-{run}-{r}", f"bare-{run}-{r}")

    starts = broker_start_seconds(3)
    print(f"\n{args.events:,} records per run, {args.rounds} rounds, alternating; 0.25 s windows\n")
    print("| consumer | events/s (median of runs) | window median | window p1 (slowest) | RSS MB "
          "| CPU µs/event, its processes | broker's |")
    print("|---|---|---|---|---|---|---|")
    for label, key in (("bare Faust agent (counts only)", "bare"), ("carewatch worker (ingest)", "worker")):
        rates = [m["rate"] for m in results[key]]
        windows = [w for m in results[key] for w in m["windows"]]
        rss = statistics.median(m["rss_mb"] for m in results[key])
        cpu = statistics.median(_cpu(m) for m in results[key])
        broker = statistics.median(m["broker_cpu_us"] for m in results[key])
        print(f"| {label} | {statistics.median(rates):,.0f} | {statistics.median(windows):,.0f} | "
              f"{pct(windows, 0.01):,.0f} | {rss:.0f} | {cpu:.0f} | {broker:.0f} |")
    ratio = statistics.median(m["rate"] for m in results["worker"]) / statistics.median(m["rate"] for m in results["bare"])
    print(f"\nworker / bare = {ratio:.2f}")
    print(f"broker start (fresh data dir, to first metadata answer): median {statistics.median(starts):.1f} s, "
          f"max {max(starts):.1f} s over {len(starts)}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
