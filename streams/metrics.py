"""Prometheus metrics of the streams package, on a registry passed in.

Names follow `carewatch_<subsystem>_<name>_<unit>`; no label carries a
person id; label values known in advance start at zero so that a panel
shows 0 rather than "no data".
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .events import CODES
from .pipeline import Outcome

__all__ = ["GatewayMetrics", "IngestMetrics"]


class IngestMetrics:
    def __init__(self, *, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "carewatch_ingest_events",
            "Records read from carewatch.events, by the one outcome each ended in.",
            ["outcome"],
            registry=registry,
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
            "Alerts written to carewatch.alerts, by severity and first reason code.",
            ["severity", "reason"],
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
        for outcome in Outcome:
            self.events.labels(outcome.value)
        for code in CODES:
            self.dead_letters.labels(code)


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
