"""The topics carewatch reads and writes, with their settings, in one place.

`ensure` creates what is missing and applies retention to what exists, so
`make up` and `carewatch topics create` can run any number of times.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import TopicAlreadyExistsError

from .config import Settings
from .exceptions import TopicsNotReady

__all__ = ["ALERTS", "ALERTS_DLQ", "AUDIT", "COMMANDS", "DLQ", "EVENTS", "MAX_BATCH_BYTES", "RISK", "SILENCES",
           "TABLES", "TopicSpec", "ensure", "name", "specs"]

log = logging.getLogger(__name__)

EVENTS = "carewatch.events"
DLQ = "carewatch.events.dlq"
RISK = "carewatch.risk"
ALERTS = "carewatch.alerts"
#: what happens to alerts in care: human actions, delivery outcomes and clock ticks, keyed by subject
COMMANDS = "carewatch.alerts.commands"
#: deliveries that no channel (nor the route's fallback) took, with the error
ALERTS_DLQ = "carewatch.alerts.dlq"
#: silences made through the API, by id (compacted; every worker reads all of it)
SILENCES = "carewatch.silences"
#: the append-only audit trail: every alert decision, delivery attempt and human action
AUDIT = "carewatch.audit"


#: the worker's tables; faust names their changelog topics `<worker.app_id>-<table>-changelog`
TABLES = ("people", "alert-books")

#: the largest record batch a topic that others write to takes (Kafka's default, pinned whatever the broker's):
#: its dead-letter topic must take any record of it back, byte for byte with the error headers added. A dead
#: letter the broker refused was sent again for good, and no batch after it was handled.
MAX_BATCH_BYTES = 1_048_588
#: the dead-letter topics': room for the headers
MAX_DEAD_LETTER_BYTES = MAX_BATCH_BYTES + 64 * 1024


def name(settings: Settings, topic: str) -> str:
    """The topic's name on the broker: the contract's name behind `kafka.topic_prefix`."""
    return settings.kafka.topic_prefix + topic


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str]


def specs(settings: Settings) -> list[TopicSpec]:
    """Everything is keyed by subject and co-partitioned with carewatch.events."""
    t = settings.topics
    raw = {"cleanup.policy": "delete", "retention.ms": str(int(t.raw_retention * 1000))}
    derived = {"cleanup.policy": "delete", "retention.ms": str(int(t.retention * 1000))}
    taken, dead = {"max.message.bytes": str(MAX_BATCH_BYTES)}, {"max.message.bytes": str(MAX_DEAD_LETTER_BYTES)}
    return [
        TopicSpec(name(settings, EVENTS), t.events_partitions, raw | taken),
        TopicSpec(name(settings, DLQ), t.events_partitions, raw | dead),
        TopicSpec(name(settings, RISK), t.events_partitions, derived),
        TopicSpec(name(settings, ALERTS), t.events_partitions, derived | taken),
        TopicSpec(name(settings, COMMANDS), t.events_partitions, derived | taken),
        TopicSpec(name(settings, ALERTS_DLQ), t.events_partitions, derived | dead),
        TopicSpec(name(settings, SILENCES), 1, {"cleanup.policy": "compact"}),
        TopicSpec(name(settings, AUDIT), t.events_partitions,
                  {"cleanup.policy": "delete", "retention.ms": str(int(t.audit_retention * 1000) or -1)}),
        # Created here, before the worker starts, not by faust at start: faust's own creation raced its
        # first assignment, and a table whose changelog was missing then failed every write
        # (PartitionsMismatch) until a restart.
        *(TopicSpec(f"{settings.worker.app_id}-{table}-changelog", t.events_partitions, {"cleanup.policy": "compact"})
          for table in TABLES),
    ]


def ensure(settings: Settings) -> list[str]:
    """Create missing topics, bring settings of existing ones up to date; return the created."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka.bootstrap_servers.split(","),
        client_id=f"{settings.kafka.client_id}-admin",
    )
    created: list[str] = []
    try:
        existing = set(admin.list_topics())
        for spec in specs(settings):
            if spec.name in existing:
                admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, spec.name, configs=spec.config)])
                continue
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            spec.name,
                            num_partitions=spec.partitions,
                            replication_factor=settings.topics.replication_factor,
                            topic_configs=spec.config,
                        )
                    ]
                )
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass
        _wait_until_served(admin, specs(settings))
    finally:
        admin.close()
    return created


def _wait_until_served(admin: KafkaAdminClient, wanted: list[TopicSpec], *, timeout: float = 60.0) -> None:
    """Return once the broker describes every topic with all its partitions led.

    A topic just created is not at once in the broker's metadata: a worker
    that started then was assigned the events partitions without its tables'
    changelogs, its ingest agent crashed (PartitionsMismatch) and it read
    nothing while reporting ready (seen in CI and in this project's tests).
    """
    deadline = time.monotonic() + timeout
    names = [spec.name for spec in wanted]
    expected = {spec.name: spec.partitions for spec in wanted}
    while True:
        missing = dict(expected)
        for topic in admin.describe_topics(names):
            partitions = topic.get("partitions") or []
            if topic.get("error_code", 0) == 0 and len(partitions) == expected.get(topic["name"]) and all(
                    p.get("leader_id", -1) >= 0 for p in partitions):
                missing.pop(topic["name"], None)
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TopicsNotReady(f"topics not served with a leader for every partition after {timeout:.0f} s: "
                                 f"{', '.join(sorted(missing))}")
        time.sleep(0.2)
