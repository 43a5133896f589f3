"""The demo's stream and report: publish, dead-letter a few records, show the outcomes.

Counts only what this run sent (offsets before and after), so it works on a
worker that has already seen earlier runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from streams.config import load
from streams.topics import ALERTS, DLQ, EVENTS, RISK, name

#: what a producer that skips the SDK might send
BAD = [
    b'{"specversion": "1.0", "id": "raw-1", "source": "app://demo/legacy", "type": "org.carewatch.survey.v1",'
    b' "subject": "p-demo01", "time": "2026-11-02T09:00:00Z", "data": {"instrument": "gad7", "items": [0, 1]}}',
    b'{"specversion": "1.0", "id": "raw-2", "source": "app://demo/legacy"',
    b"\xff\xfe not even text",
]


def outcomes(port: int) -> dict[str, int]:
    """Records by outcome, summed over event types."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    totals: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "carewatch_ingest_events":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    outcome = sample.labels["outcome"]
                    totals[outcome] = totals.get(outcome, 0) + int(sample.value)
    return totals


def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    offsets = consumer.end_offsets(partitions)
    consumer.close()
    return offsets


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("file")
    args = parser.parse_args()
    settings = load(args.config)
    bootstrap = settings.kafka.bootstrap_servers
    events, dlq, risk, alerts = (name(settings, t) for t in (EVENTS, DLQ, RISK, ALERTS))
    before = {topic: end_offsets(bootstrap, topic) for topic in (events, dlq, risk, alerts)}
    counted_before = outcomes(args.port)

    print("demo: publishing through the SDK; bad lines are refused at the door")
    subprocess.run([sys.executable, "-m", "streams.cli", "publish", args.file, "--config", args.config], check=False)
    print(f"\ndemo: a producer that skips the SDK sends {len(BAD)} bad records; the worker dead-letters them")
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for raw in BAD:
        producer.send(events, raw, key=b"p-demo01")
    producer.flush()
    producer.close()

    sent = sum(end_offsets(bootstrap, events).values()) - sum(before[events].values())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the worker's own counters say when every record has its outcome
        counted = {k: v - counted_before.get(k, 0) for k, v in outcomes(args.port).items()}
        if sum(counted.values()) >= sent:
            break
        time.sleep(0.2)
    print(f"\nevery record this run put on {events} ended in one outcome ({sum(counted.values())} of {sent}):")
    for outcome, value in counted.items():
        print(f"  {outcome:<16} {value}")

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=2000)
    consumer.assign(list(before[dlq]))
    for tp, offset in before[dlq].items():
        consumer.seek(tp, offset)
    print(f"\n{dlq}, reasons only (each value is the original bytes, untouched):")
    for record in consumer:
        headers = dict(record.headers)
        print(f"  [{headers['carewatch-error-code'].decode()}] {headers['carewatch-error'].decode()}")
    consumer.close()
    new_risk = sum(end_offsets(bootstrap, risk).values()) - sum(before[risk].values())
    print(f"\n{risk}: {new_risk} new records, one per processed event: scores, fused risk, model versions, no text")

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=2000)
    consumer.assign(list(before[alerts]))
    for tp, offset in before[alerts].items():
        consumer.seek(tp, offset)
    raised = [json.loads(record.value) for record in consumer]
    consumer.close()
    print(f"\n{alerts}: {len(raised)} new alerts (CONTRACT §2 objects; routed to the console channel, which "
          "prints them in the worker's log, and shown in the care-team console)")
    for alert in raised[:8]:
        reasons = "; ".join(r["detail"] for r in alert["reasons"])
        print(f"  [{alert['severity']}] {alert['subject']} -> {alert['care_team']}: {reasons}")


if __name__ == "__main__":
    main()
