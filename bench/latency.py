"""Latency from produce to the alert on carewatch.alerts, at a steady rate, beside the raw floor.

A producer sends events at `--rate` per second (every type, stamped now; 5%
are PHQ-9 surveys with item 9 answered, which the safety rules always turn
into an `urgent` alert). One consumer reads carewatch.alerts and, in the
same process and run, another reads carewatch.events itself: the second is
the floor, what the broker and clients cost with no worker in between.
Latency is the time from just before `send()` of the evidence event to the
record's arrival at the reading consumer.

    .venv/bin/python bench/latency.py [--rate 1000] [--seconds 30]

Needs Kafka on localhost:9092 (`make up`). All data is synthetic.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import orjson
import yaml
from kafka import KafkaConsumer, KafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import batch_steps, drop_topics, fresh_topics, pct, start, worker_overrides  # noqa: E402
from streams import topics  # noqa: E402
from tests.factory import event, random_valid  # noqa: E402
from tests.processes import free_port  # noqa: E402

BOOTSTRAP = os.environ.get("CAREWATCH_BENCH_BOOTSTRAP", "127.0.0.1:9092")


def read(topic: str, arrived: dict[str, float], key, stop: threading.Event) -> None:
    """Record the arrival time of each record under `key(value)`; fetch wait short, as a dashboard's would be."""
    consumer = KafkaConsumer(topic, bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest",
                             fetch_max_wait_ms=5, group_id=None, enable_auto_commit=False)
    while not stop.is_set():
        for records in consumer.poll(timeout_ms=50).values():
            now = time.perf_counter()
            for record in records:
                for name in key(record.value):
                    arrived.setdefault(name, now)
    consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=30)
    worker_overrides(parser)
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    prefix = f"lat{run}."
    settings, events_topic = fresh_topics(BOOTSTRAP, prefix)
    alerts_topic = topics.name(settings, topics.ALERTS)
    work = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    port = free_port()
    config = work / "carewatch.yaml"
    config.write_text(yaml.safe_dump({
        "kafka": {"bootstrap_servers": BOOTSTRAP, "topic_prefix": prefix},
        "worker": {"app_id": f"lat-{run}", "data_dir": str(work / "data"), **dict(args.worker)},
        "web": {"port": port},
    }))
    worker = start([sys.executable, "-m", "streams.cli", "worker", "--config", str(config), "--loglevel", "warning"],
                   ready_url=f"http://127.0.0.1:{port}/readyz", log=work / "worker.log")

    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=0)
    rng = random.Random(11)
    subjects = [f"p-lat{i:04d}" for i in range(500)]
    for s in subjects:
        producer.send(events_topic, key=s.encode(), value=orjson.dumps(event("consent", subject=s, event_id=f"{s}-c",
                      when=datetime.now(timezone.utc))))
    producer.flush()

    stop = threading.Event()
    alerted: dict[str, float] = {}
    echoed: dict[str, float] = {}
    readers = [threading.Thread(target=read, args=(alerts_topic, alerted, lambda v: orjson.loads(v)["evidence"], stop)),
               threading.Thread(target=read, args=(events_topic, echoed, lambda v: [orjson.loads(v)["id"]], stop))]
    for reader in readers:
        reader.start()

    sent: dict[str, float] = {}
    safety: list[str] = []
    n = args.rate * args.seconds
    began = time.perf_counter()
    for i in range(n):
        due = began + i / args.rate
        while (ahead := due - time.perf_counter()) > 0:
            time.sleep(ahead)
        subject = rng.choice(subjects)
        now = datetime.now(timezone.utc)
        if rng.random() < 0.05:
            e = event("survey", subject=subject, when=now, event_id=f"lat-{i}", instrument="phq9",
                      items=[1, 1, 1, 1, 1, 1, 1, 1, rng.randint(1, 3)])
            safety.append(e["id"])
        else:
            e = random_valid(rng, subject=subject, source="app://bench/latency", when=now, event_id=f"lat-{i}")
        raw = orjson.dumps(e)
        sent[e["id"]] = time.perf_counter()
        producer.send(events_topic, key=subject.encode(), value=raw)
    producer.flush()
    achieved = n / (time.perf_counter() - began)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(s in alerted for s in safety):
        time.sleep(0.2)
    stop.set()
    for reader in readers:
        reader.join()
    steps = batch_steps(f"http://127.0.0.1:{port}/metrics")
    worker.terminate()
    worker.wait(60)
    shutil.rmtree(work, ignore_errors=True)
    drop_topics(BOOTSTRAP, prefix, f"lat-{run}")

    floor = [(echoed[k] - sent[k]) * 1000 for k in sent if k in echoed]
    alert = [(alerted[k] - sent[k]) * 1000 for k in safety if k in alerted]
    missing = len([k for k in safety if k not in alerted])
    print(f"{n:,} events at {achieved:,.0f}/s offered ({args.rate:,}/s asked), {len(safety)} safety events, "
          f"{missing} without an alert after 60 s\n")
    print("| path | median ms | p99 ms | max ms |")
    print("|---|---|---|---|")
    for label, values in (("produce → carewatch.events consumer (floor)", floor),
                          ("produce → alert on carewatch.alerts", alert)):
        print(f"| {label} | {statistics.median(values):.1f} | {pct(values, 0.99):.1f} | {max(values):.1f} |")
    print(f"\np99 alert / p99 floor = {pct(alert, 0.99) / pct(floor, 0.99):.1f}")
    print("\nInside the worker (carewatch_ingest_batch_seconds, mean per batch over the run): "
          + ", ".join(f"{step} {ms:.1f} ms" for step, ms in steps.items() if step != "events")
          + f"; {steps['events']:.1f} events a batch")


if __name__ == "__main__":
    main()
