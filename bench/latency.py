"""Latency from produce to the alert on carewatch.alerts, at a steady rate, beside the raw floor.

A producer sends events at `--rate` per second (every type, stamped now; 5%
are PHQ-9 surveys with item 9 answered, which the safety rules always turn
into an `urgent` alert). One consumer reads carewatch.alerts and, in the
same process and run, another reads carewatch.events itself: the second is
the floor, what the broker and clients cost with no worker in between.
Timing starts once both consumers read and the worker has raised a first
alert, and after `--warmup` seconds at the rate. Latency is the time from
just before `produce()` of the evidence event to the record's arrival at the
reading consumer.

The benchmark's own clients are librdkafka's (confluent-kafka): they send and
fetch in C threads, outside the GIL. With kafka-python's pure Python clients
the benchmark took more of the 2 cores than the worker did (81% against 69%
of a core at 1,000 events/s), and its own thread switches showed in both paths.

    .venv/bin/python bench/latency.py [--rate 1000] [--seconds 30] [--warmup 5] [--workers 1]

With `--workers 2` two worker processes in one group split the partitions.

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
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import batch_steps, drop_topics, fresh_topics, pct, start, worker_overrides  # noqa: E402
from streams import topics  # noqa: E402
from tests.factory import event, random_valid  # noqa: E402
from tests.processes import free_port, wait_for  # noqa: E402

BOOTSTRAP = os.environ.get("CAREWATCH_BENCH_BOOTSTRAP", "127.0.0.1:9092")


def read(topic: str, partitions: int, arrived: dict[str, float], key, stop: threading.Event) -> None:
    """Record the arrival time of each record under `key(value)`; fetch wait 25 ms, as the worker's.

    A wait of 5 ms cost the broker 56% of a core against 44% (one run each; its fetches of idle partitions).
    """
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"bench-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 25, "socket.nagle.disable": True})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])  # no group join
    while not stop.is_set():
        record = consumer.poll(0.05)  # one record, as soon as there is one (consume() waits to fill its batch)
        now = time.perf_counter()
        if record is not None and record.error() is None:
            for name in key(record.value()):
                arrived.setdefault(name, now)
    consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5, help="seconds at the rate before timing starts")
    parser.add_argument("--workers", type=int, default=1, help="worker processes in one group")
    worker_overrides(parser)
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    prefix = f"lat{run}."
    settings, events_topic = fresh_topics(BOOTSTRAP, prefix)
    alerts_topic = topics.name(settings, topics.ALERTS)
    work = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    workers, ports = [], []
    for i in range(args.workers):  # one consumer group: they split the partitions
        ports.append(port := free_port())
        config = work / f"carewatch-{i}.yaml"
        config.write_text(yaml.safe_dump({
            "kafka": {"bootstrap_servers": BOOTSTRAP, "topic_prefix": prefix},
            "worker": {"app_id": f"lat-{run}", "data_dir": str(work / f"data-{i}"), **dict(args.worker)},
            "web": {"port": port},
        }))
        workers.append(start([sys.executable, "-m", "streams.cli", "worker", "--config", str(config),
                              "--loglevel", "warning"],
                             ready_url=f"http://127.0.0.1:{port}/readyz", log=work / f"worker-{i}.log"))

    # murmur2: the partitions the Java client and carewatch's SDK give a key
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "linger.ms": 0,
                         "partitioner": "murmur2_random", "socket.nagle.disable": True})
    rng = random.Random(11)
    subjects = [f"p-lat{i:04d}" for i in range(500)]
    for s in subjects:
        producer.produce(events_topic, key=s.encode(), value=orjson.dumps(event(
            "consent", subject=s, event_id=f"{s}-c", when=datetime.now(timezone.utc))))
    producer.flush()

    stop = threading.Event()
    alerted: dict[str, float] = {}
    echoed: dict[str, float] = {}
    partitions = settings.topics.events_partitions
    readers = [threading.Thread(target=read, args=(alerts_topic, partitions, alerted,
                                                   lambda v: orjson.loads(v)["evidence"], stop)),
               threading.Thread(target=read, args=(events_topic, partitions, echoed,
                                                   lambda v: [orjson.loads(v)["id"]], stop))]
    for reader in readers:
        reader.start()
    # Both readers read and the worker has alerted once; then `--warmup` seconds at the rate, not timed. A
    # consumer's first fetches (metadata, offsets) took about half a second, and the worker's first second at
    # the rate (its group still settling) about 150 ms: either was the whole p99 of a 30 s run.
    warm = event("survey", subject=subjects[0], when=datetime.now(timezone.utc), event_id="lat-warm",
                 instrument="phq9", items=[1, 1, 1, 1, 1, 1, 1, 1, 3])
    producer.produce(events_topic, key=subjects[0].encode(), value=orjson.dumps(warm))
    producer.flush()
    wait_for(lambda: "lat-warm" in alerted and all(f"{s}-c" in echoed for s in subjects), timeout=120,
             what="the readers and the worker, warming up", interval=0.05)

    sent: dict[str, float] = {}
    safety: list[str] = []
    warmup, n = args.rate * args.warmup, args.rate * args.seconds
    began = time.perf_counter()
    for i in range(warmup + n):
        due = began + i / args.rate
        while (ahead := due - time.perf_counter()) > 0:
            time.sleep(ahead)
        if i == warmup:
            timed = time.perf_counter()
        subject = rng.choice(subjects)
        now = datetime.now(timezone.utc)
        if rng.random() < 0.05:
            e = event("survey", subject=subject, when=now, event_id=f"lat-{i}", instrument="phq9",
                      items=[1, 1, 1, 1, 1, 1, 1, 1, rng.randint(1, 3)])
            if i >= warmup:
                safety.append(e["id"])
        else:
            e = random_valid(rng, subject=subject, source="app://bench/latency", when=now, event_id=f"lat-{i}")
        raw = orjson.dumps(e)
        if i >= warmup:
            sent[e["id"]] = time.perf_counter()
        producer.produce(events_topic, key=subject.encode(), value=raw)
        producer.poll(0)  # delivery reports, so that librdkafka's queue does not fill
    producer.flush()
    achieved = n / (time.perf_counter() - timed)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(s in alerted for s in safety):
        time.sleep(0.2)
    stop.set()
    for reader in readers:
        reader.join()
    steps = [batch_steps(f"http://127.0.0.1:{port}/metrics") for port in ports]
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(60)
    shutil.rmtree(work, ignore_errors=True)
    drop_topics(BOOTSTRAP, prefix, f"lat-{run}")

    floor = [(echoed[k] - sent[k]) * 1000 for k in sent if k in echoed]
    alert = [(alerted[k] - sent[k]) * 1000 for k in safety if k in alerted]
    missing = len([k for k in safety if k not in alerted])
    print(f"{n:,} events timed (after {warmup:,} not) at {achieved:,.0f}/s offered ({args.rate:,}/s asked), "
          f"{len(safety)} safety events, {missing} without an alert after 60 s\n")
    print("| path | median ms | p99 ms | max ms |")
    print("|---|---|---|---|")
    for label, values in (("produce → carewatch.events consumer (floor)", floor),
                          ("produce → alert on carewatch.alerts", alert)):
        print(f"| {label} | {statistics.median(values):.1f} | {pct(values, 0.99):.1f} | {max(values):.1f} |")
    print(f"\np99 alert / p99 floor = {pct(alert, 0.99) / pct(floor, 0.99):.1f}")
    for i, worker_steps in enumerate(steps):
        print(f"\nInside worker {i + 1} of {len(steps)} (carewatch_ingest_batch_seconds, mean per batch over the run): "
              + ", ".join(f"{step} {ms:.1f} ms" for step, ms in worker_steps.items() if step != "events")
              + f"; {worker_steps['events']:.1f} events a batch")


if __name__ == "__main__":
    main()
