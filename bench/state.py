"""Worker state at scale: memory with many people in state, bytes per person, restore time.

    .venv/bin/python bench/state.py [--people 100000]

Publishes, for each synthetic person, a consent and two wearable events;
runs one worker until every event has its outcome (its RSS then is "memory
with N people"); reads the changelog topic to size the state per person;
then starts a second worker on an empty local store and times how long it
takes to restore every person from the changelog and report ready. Needs
Kafka on localhost:9092 (`make up`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import orjson
import yaml
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import drop_topics, fresh_topics, rss_mb, start  # noqa: E402
from tests.factory import event  # noqa: E402
from tests.processes import free_port  # noqa: E402

BOOTSTRAP = os.environ.get("CAREWATCH_BENCH_BOOTSTRAP", "127.0.0.1:9092")


def start_worker(path: Path, port: int):
    return start([sys.executable, "-m", "streams.cli", "worker", "--config", str(path), "--loglevel", "warning"],
                 ready_url=f"http://127.0.0.1:{port}/readyz", log=path.with_suffix(".log"), timeout=1800)


def outcomes(port: int) -> int:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("carewatch_ingest_events_total{")))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=100_000)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    prefix = f"state{run}."
    _, name = fresh_topics(BOOTSTRAP, prefix)
    t0 = datetime(2026, 6, 1, tzinfo=timezone.utc)
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=20, batch_size=512 * 1024)
    sent = 0
    for i in range(args.people):
        subject = f"p-st{i:07d}"
        for e in (event("consent", subject=subject, when=t0, event_id=f"{subject}-c"),
                  event("wearable", subject=subject, when=t0 + timedelta(hours=8), metric="sleep_duration", value=7.1,
                        unit="h", event_id=f"{subject}-s"),
                  event("wearable", subject=subject, when=t0 + timedelta(hours=9), metric="step_count", value=6400,
                        unit="steps", event_id=f"{subject}-w")):
            producer.send(name, value=orjson.dumps(e), key=subject.encode())
            sent += 1
    producer.flush()
    producer.close()
    print(f"published {sent:,} events for {args.people:,} people", flush=True)

    work = Path(tempfile.mkdtemp(prefix="bench-state-"))
    port = free_port()
    path = work / "first.yaml"
    path.write_text(yaml.safe_dump({"kafka": {"bootstrap_servers": BOOTSTRAP, "topic_prefix": prefix},
                                    "worker": {"app_id": f"state-{run}", "data_dir": str(work / "first")},
                                    "web": {"port": port}}))
    first = start_worker(path, port)
    started = time.perf_counter()
    rss: list[float] = []
    while outcomes(port) < sent:
        rss.append(rss_mb(first.pid))
        time.sleep(1)
    took = time.perf_counter() - started
    memory = rss_mb(first.pid)
    first.terminate()
    first.wait(120)

    changelog = f"state-{run}-people-changelog"
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    partitions = [TopicPartition(changelog, p) for p in consumer.partitions_for_topic(changelog)]
    ends = consumer.end_offsets(partitions)
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    latest: dict[bytes, int] = {}
    while any(consumer.position(tp) < end for tp, end in ends.items()):
        for batch in consumer.poll(timeout_ms=1000).values():
            for record in batch:
                latest[record.key] = len(record.value or b"")
    consumer.close()
    sizes = sorted(latest.values())

    port = free_port()
    path = work / "second.yaml"
    path.write_text(yaml.safe_dump({"kafka": {"bootstrap_servers": BOOTSTRAP, "topic_prefix": prefix},
                                    "worker": {"app_id": f"state-{run}", "data_dir": str(work / "second")},
                                    "web": {"port": port}}))
    started = time.perf_counter()
    second = start_worker(path, port)
    restore = time.perf_counter() - started
    second_rss = rss_mb(second.pid)
    second.terminate()
    second.wait(120)
    shutil.rmtree(work, ignore_errors=True)
    drop_topics(BOOTSTRAP, prefix, f"state-{run}")
    print("\n| measure | value |\n|---|---|")
    print(f"| people in state | {len(latest):,} |")
    print(f"| events processed by the first worker | {sent:,} in {took:.0f} s ({sent / took:,.0f} events/s) |")
    print(f"| worker RSS with them in state | {memory:,.0f} MB (median while filling {statistics.median(rss):,.0f} MB) |")
    print(f"| state bytes per person (changelog value) | median {sizes[len(sizes) // 2]:,}, max {sizes[-1]:,} |")
    print(f"| restore on an empty local store, start to ready | {restore:.1f} s (RSS then {second_rss:,.0f} MB) |")


if __name__ == "__main__":
    main()
