"""The faust application: topics, the person table, agents and web views.

This is the edge of streams/: the only place (with the SDK and gateway)
that imports faust or a Kafka client. Agents call the pure core and do
nothing else of substance.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, disable_created_metrics, generate_latest

from .config import Settings
from .metrics import IngestMetrics
from .pipeline import Pipeline
from .topics import ALERTS, ALERTS_DLQ, AUDIT, COMMANDS, DLQ, EVENTS, RISK, SILENCES, TABLES, name

__all__ = ["Worker", "create_worker", "readiness"]


@dataclass(slots=True)
class Worker:
    """The app with what its agents and views share."""

    app: faust.App
    settings: Settings
    registry: CollectorRegistry
    metrics: IngestMetrics
    events: faust.TopicT
    dlq: faust.TopicT
    risk: faust.TopicT
    alerts: faust.TopicT
    people: faust.types.TableT
    commands: faust.TopicT
    audit: faust.TopicT
    alerts_dlq: faust.TopicT
    silences: faust.TopicT
    books: faust.types.TableT
    alerting: Any = None
    #: partitions the watchdog found stalled (records waiting, none read)
    stalled: set[int] = field(default_factory=set)


#: the largest record batch the agents hand the producer (faust's default, 16 KB, took two or three a partition)
_MAX_BATCH_BYTES = 256 * 1024


def create_worker(settings: Settings, *, registry: CollectorRegistry | None = None) -> Worker:
    registry = registry if registry is not None else CollectorRegistry()
    disable_created_metrics()
    # The pipeline runs in a process of its own (agents/offload.py); its models and lexicon are loaded here once
    # too, so that a missing or broken one stops the start with its own message, before anything is read.
    Pipeline.from_settings(settings)
    partitions = settings.topics.events_partitions
    data_dir = Path(settings.worker.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.worker.app_id,
        broker=[f"kafka://{server}" for server in settings.kafka.bootstrap_servers.split(",")],
        broker_client_id=settings.kafka.client_id,
        store=f"{settings.worker.store}://",
        datadir=str(data_dir),
        topic_partitions=partitions,
        topic_replication_factor=settings.topics.replication_factor,
        table_standby_replicas=settings.worker.standby_replicas,
        producer_acks=-1,
        producer_linger=settings.worker.producer_linger,
        # a batch's records for one partition go in one record batch (under the broker's 1 MB message limit)
        producer_max_batch_size=_MAX_BATCH_BYTES,
        broker_max_poll_records=settings.worker.poll_records,
        broker_session_timeout=settings.worker.session_timeout,
        broker_heartbeat_interval=settings.worker.heartbeat_interval,
        consumer_auto_offset_reset="earliest",
        web_enabled=True,
        web_bind=settings.web.host,
        web_host=settings.web.host,
        web_port=settings.web.port,
        web_in_thread=False,
        autodiscover=False,
    )
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    worker = Worker(
        app=app,
        settings=settings,
        registry=registry,
        metrics=IngestMetrics(registry=registry),
        # faust never sees its records (agents/intake.py takes them) nor acknowledges them
        events=app.topic(name(settings, EVENTS), partitions=partitions, acks=False, **raw),
        dlq=app.topic(name(settings, DLQ), partitions=partitions, **raw),
        risk=app.topic(name(settings, RISK), partitions=partitions, **raw),
        alerts=app.topic(name(settings, ALERTS), partitions=partitions, **raw),
        people=app.Table(
            TABLES[0],
            partitions=partitions,
            key_type=bytes,
            value_type=bytes,
            help="Per-person state: consent history, hashed ids of recent events, features, detection. No free text.",
        ),
        commands=app.topic(name(settings, COMMANDS), partitions=partitions, **raw),
        audit=app.topic(name(settings, AUDIT), partitions=partitions, **raw),
        alerts_dlq=app.topic(name(settings, ALERTS_DLQ), partitions=partitions, **raw),
        silences=app.topic(name(settings, SILENCES), partitions=1, **raw),
        books=app.Table(
            TABLES[1],
            partitions=partitions,
            key_type=bytes,
            value_type=bytes,
            help="Per-person alerts in care: status, escalation deadlines, pending deliveries. No free text.",
        ),
    )
    # Tables take their codecs from their types (json for bytes); state is
    # encoded by PersonState itself, so its store and changelog carry raw bytes.
    for table in (worker.people, worker.books):
        table.key_serializer = table.value_serializer = "raw"
    from .agents import actions, alerting, console, ingest, silences, watchdog

    progress = watchdog.Progress(stall_timeout=settings.worker.stall_timeout)
    routing = watchdog.Progress(stall_timeout=settings.worker.stall_timeout)
    ingest.install(worker, progress)
    worker.alerting = alerting.install(worker, routing)
    watchdog.install(worker, progress, routing=routing)
    acting = actions.install(worker, worker.alerting)
    console.install(worker, worker.alerting, acting, silences.install(worker, worker.alerting, acting.tokens))
    _tune_fetcher(worker)
    _install_views(worker)
    return worker


def _tune_fetcher(worker: Worker) -> None:
    """Once aiokafka has a fetcher: set its long-poll wait (faust hard-codes 1.5 s), and put events last."""

    @worker.app.task
    async def tune() -> None:
        wait_ms = int(worker.settings.worker.fetch_max_wait * 1000)
        while (fetcher := getattr(getattr(worker.app.consumer._thread, "_consumer", None), "_fetcher", None)) is None:
            await asyncio.sleep(0.05)
        fetcher._fetch_max_wait_ms = wait_ms
        _events_last(fetcher, worker.events.get_topic_name())


def _events_last(fetcher: Any, events: str) -> None:
    """Hand out records of every other topic (alerts, commands) before the events topic's.

    aiokafka hands out fetched records partition by partition in the order they were fetched, up to
    `worker.poll_records`, and faust's reader goes no faster than the ingest agent. With a backlog, a
    partition of events holds about 1 MB of records, so an alert raised meanwhile waited behind them
    (6 to 12 s after a restart in the tests) before the alerting agent read it. Since the intake takes the events
    records out of each read at once, this matters only for a read whose `worker.poll_records` are all events.
    """
    fetched_records = fetcher.fetched_records

    async def events_last(partitions: Any, timeout: float = 0, max_records: int | None = None) -> Any:
        records = fetcher._records  # an OrderedDict, touched only on the consumer's thread, as here
        for tp in [tp for tp in records if tp.topic == events]:
            records.move_to_end(tp)
        return await fetched_records(partitions, timeout=timeout, max_records=max_records)

    fetcher.fetched_records = events_last


def _install_views(worker: Worker) -> None:
    app = worker.app

    @app.page("/metrics")
    async def metrics(self, request):
        # `?name[]=a&name[]=b` limits the answer to those families, as prometheus_client's own exposition does:
        # a frequent poller (the benchmarks) then costs the worker little
        names = request.query.getall("name[]", [])
        registry = worker.registry.restricted_registry(names) if names else worker.registry
        return self.bytes(generate_latest(registry), content_type=CONTENT_TYPE_LATEST.split(";")[0] + "; version=0.0.4")

    @app.page("/healthz")
    async def healthz(self, request):  # noqa: ARG001
        return self.json({"status": "ok", "time": time.time()})

    @app.page("/readyz")
    async def readyz(self, request):  # noqa: ARG001
        ready, why = readiness(app, stalled=worker.stalled)
        consumer = getattr(app, "_consumer", None)
        events = worker.events.get_topic_name()
        partitions = sorted(tp.partition for tp in consumer.assignment() if tp.topic == events) if consumer else []
        return self.json({"ready": ready, "reason": why, "partitions": partitions}, status=200 if ready else 503)


def readiness(app: faust.App, *, stalled: set[int] = frozenset()) -> tuple[bool, str]:
    """Ready once partitions are assigned and table state is restored, and while reading goes on."""
    if app.rebalancing:
        return False, "rebalancing"
    if not app.tables.recovery.completed.is_set():
        return False, "restoring state"
    consumer = getattr(app, "_consumer", None)
    if consumer is None or not consumer.assignment():
        return False, "no partitions assigned yet"
    if stalled:
        return False, f"stalled: records wait on partitions {sorted(stalled)} and none is read"
    return True, "ok"
