"""Prometheus metrics of the streams package, on a registry passed in.

Names follow `carewatch_<subsystem>_<name>_<unit>`; no label carries a
person id; label values known in advance start at zero so that a panel
shows 0 rather than "no data".
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .events import CODES, EVENT_TYPES
from .pipeline import Outcome

#: batch sizes as metric labels: a handful of ranges, never the raw number
_BATCHES = ((1, "1"), (16, "2-16"), (64, "17-64"), (256, "65-256"))
#: the steps of an ingest batch, in order (carewatch_ingest_batch_seconds)
_BATCH_STEPS = ("waited", "processed", "delivered", "stored")

__all__ = ["GatewayMetrics", "IngestMetrics"]


class IngestMetrics:
    def __init__(self, *, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "carewatch_ingest_events",
            "Records read from carewatch.events, by event type (invalid when unreadable) and the one outcome each "
            "ended in.",
            ["type", "outcome"],
            registry=registry,
        )
        self.risk = Counter(
            "carewatch_risk_assessments",
            "Risk records written to carewatch.risk (one per processed event).",
            registry=registry,
        )
        self.scoring = Histogram(
            "carewatch_scoring_seconds",
            "Time of one model run over a batch, by model and batch size range.",
            ["model", "batch"],
            registry=registry,
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
        )
        self.lag = Gauge(
            "carewatch_ingest_consumer_lag",
            "Records on a held partition of carewatch.events not read yet (end offset minus next offset).",
            ["partition"],
            registry=registry,
        )
        self.event_lag = Histogram(
            "carewatch_ingest_event_time_lag_seconds",
            "Processing time minus event time of processed events (late and replayed events show here).",
            registry=registry,
            buckets=(0.1, 1, 5, 30, 60, 300, 3600, 6 * 3600, 86400, 7 * 86400),
        )
        self.state_bytes = Histogram(
            "carewatch_state_person_bytes",
            "Size of a person's state when written (RocksDB value and changelog record).",
            registry=registry,
            buckets=(256, 512, 1024, 2048, 4096, 8192, 16384, 65536),
        )
        self.dead_letters = Counter(
            "carewatch_ingest_dead_letters",
            "Records written to carewatch.events.dlq, by error code.",
            ["code"],
            registry=registry,
        )
        self.key_mismatch = Counter(
            "carewatch_ingest_key_mismatch",
            "Valid events whose record key was not their subject (processed all the same).",
            registry=registry,
        )
        self.alerts = Counter(
            "carewatch_alerts_raised",
            "Alerts written to carewatch.alerts, by care team, severity and first reason code.",
            ["care_team", "severity", "reason"],
            registry=registry,
        )
        self.stalled = Gauge(
            "carewatch_ingest_stalled_partitions",
            "Held partitions of carewatch.events with records waiting and none read for worker.stall_timeout.",
            registry=registry,
        )
        self.stall_nudges = Counter(
            "carewatch_ingest_stall_nudges",
            "Times the watchdog resumed stalled partitions and sought them to their committed offsets.",
            registry=registry,
        )
        self.offset_gaps = Counter(
            "carewatch_offset_gaps",
            "Runs of records the consumer passed over before an agent saw them; each was read again.",
            ["topic"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "carewatch_ingest_batch_seconds",
            "Time an ingest batch spent at each step: waited (from its oldest record's timestamp until the agent "
            "took it: broker, fetch and queue), processed (the pipeline), delivered (until the broker acknowledged "
            "its outputs), stored (from then until its states, waiting up to worker.store_interval, were written to "
            "the table and its changelog acknowledged).",
            ["step"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60),
        )
        self.batch_events = Histogram(
            "carewatch_ingest_batch_events",
            "Events in each batch the ingest agent took.",
            registry=registry,
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
        )
        for step in _BATCH_STEPS:
            self.batch_seconds.labels(step)
        for kind in [*EVENT_TYPES.values(), "invalid"]:
            for outcome in Outcome:
                self.events.labels(kind, outcome.value)
        for model in ("text-risk", "deviation"):
            for _, label in [*_BATCHES, (0, "257+")]:
                self.scoring.labels(model, label)
        for code in CODES:
            self.dead_letters.labels(code)

    def observe_scoring(self, model: str, size: int, seconds: float) -> None:
        label = next((label for top, label in _BATCHES if size <= top), "257+")
        self.scoring.labels(model, label).observe(seconds)


class GatewayMetrics:
    def __init__(self, *, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "carewatch_gateway_requests",
            "HTTP requests to POST /v1/events, by status code.",
            ["status"],
            registry=registry,
        )
        self.events = Counter(
            "carewatch_gateway_events",
            "Events in accepted requests, by result (accepted, rejected, failed).",
            ["result"],
            registry=registry,
        )
        self.publish_seconds = Histogram(
            "carewatch_gateway_publish_seconds",
            "Time from a request's arrival to the broker's acknowledgement of its events.",
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        for status in ("202", "400", "401", "413", "415", "503"):
            self.requests.labels(status)
        for result in ("accepted", "rejected", "failed"):
            self.events.labels(result)
