"""Prometheus metrics of the alerts package, on a registry passed in. No person id in any label."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .config import SEVERITIES

__all__ = ["AlertingMetrics"]


class AlertingMetrics:
    def __init__(self, *, registry: CollectorRegistry, channels: dict[str, str]) -> None:
        self.decisions = Counter("carewatch_alerting_decisions", "Alerts taken into care, by what was decided.",
                                 ["severity", "outcome"], registry=registry)
        self.deliveries = Counter("carewatch_alerting_deliveries",
                                  "Final outcomes of deliveries, by channel asked and outcome "
                                  "(delivered, fallback, dead_lettered).", ["channel", "outcome"], registry=registry)
        self.attempts = Counter("carewatch_alerting_delivery_attempts", "Tries of a delivery, by channel and result "
                                "(ok or the error class).", ["channel", "result"], registry=registry)
        self.retries = Counter("carewatch_alerting_delivery_retries", "Tries after the first, by channel.",
                               ["channel"], registry=registry)
        self.delivery_seconds = Histogram(
            "carewatch_alerting_delivery_seconds", "Time from a send's start to its final outcome, retries included.",
            ["channel"], registry=registry, buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 900))
        self.escalations = Counter("carewatch_alerting_escalations", "Escalation steps taken, by severity.",
                                   ["severity"], registry=registry)
        self.open = Gauge("carewatch_alerting_open_alerts",
                          "Firing alerts no human has acknowledged yet, in the partitions this worker holds.",
                          ["severity"], registry=registry)
        self.overdue = Gauge("carewatch_alerting_overdue_alerts",
                             "Firing alerts no human has acknowledged past their severity's deadline (CONTRACT §2: "
                             "critical 5 min, urgent 60 min), in the partitions this worker holds.",
                             ["severity"], registry=registry)
        self.unowned = Gauge("carewatch_alerting_unowned_alerts",
                             "Alerts in care, not resolved, whose care team the config no longer names, in the "
                             "partitions this worker holds: no token may act on them (403), so they escalate until "
                             "the config names the team again.", registry=registry)
        self.ack_seconds = Histogram(
            "carewatch_alerting_time_to_acknowledge_seconds", "From an alert's notice to its first human action.",
            ["severity"], registry=registry, buckets=(30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600))
        self.actions = Counter("carewatch_alerting_actions", "Ack API requests, by action and status code.",
                               ["action", "code"], registry=registry)
        self.batch = Histogram("carewatch_alerting_batch_records", "Records the alerting agent applied together.",
                               registry=registry, buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500))
        self.wait_seconds = Histogram(
            "carewatch_alerting_wait_seconds", "From a record's timestamp on carewatch.alerts or "
            "carewatch.alerts.commands until the alerting agent applied it: how far behind routing is.",
            registry=registry, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60))
        self.errors = Counter("carewatch_alerting_errors", "Batches of records on the alerting topics that failed: "
                              "retried (held back, tried again) or dead_lettered (a record that can never be applied, "
                              "on carewatch.alerts.dlq with the error).", ["outcome"], registry=registry)
        for name, kind in channels.items():
            for outcome in ("delivered", "fallback", "dead_lettered"):
                self.deliveries.labels(name, outcome)
            self.attempts.labels(name, "ok")
            self.retries.labels(name)
        for outcome in ("retried", "dead_lettered"):
            self.errors.labels(outcome)
        for severity in SEVERITIES:
            self.open.labels(severity)
            self.overdue.labels(severity)
            self.ack_seconds.labels(severity)
            self.escalations.labels(severity)
            for outcome in ("notified", "silenced", "capped"):
                self.decisions.labels(severity, outcome)
