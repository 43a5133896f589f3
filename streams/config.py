"""One YAML file configures carewatch (CONTRACT §4).

Every key has a default; `CAREWATCH_<SECTION>__<KEY>` environment variables
override the file; a bad file fails at load with the path of the bad key,
for example `web.port: expected an integer, got 'abc'`. Settings are frozen.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from alerts.config import AlertingConfig, Duration, Sha256

from .exceptions import ConfigError

__all__ = ["Settings", "load"]

ENV_PREFIX = "CAREWATCH_"
class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaSettings(_Section):
    bootstrap_servers: str = "localhost:9092"
    client_id: str = "carewatch"
    #: prepended to every topic name; empty in production, so the names are the
    #: contract's. Lets several deployments (or test runs) share one cluster.
    topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$")


class TopicsSettings(_Section):
    """Topic settings used when carewatch creates its topics."""

    events_partitions: int = Field(default=12, ge=1)
    #: carewatch.events and its DLQ hold free text: keep them briefly.
    raw_retention: Duration = 3 * 86400
    #: carewatch.risk and carewatch.alerts hold no free text.
    retention: Duration = 30 * 86400
    #: the audit trail; 0 keeps it for ever
    audit_retention: Duration = 0
    replication_factor: int = Field(default=1, ge=1)


class WorkerSettings(_Section):
    app_id: str = "carewatch"
    data_dir: str = ".data/worker"
    store: Literal["rocksdb", "memory"] = "rocksdb"
    standby_replicas: int = Field(default=0, ge=0)
    #: the most events handed to the pipeline (and the models) at once
    batch_max: int = Field(default=500, ge=1)
    #: how long a batch waits for more events after its first: bigger batches, fewer model calls
    batch_wait: Duration = Field(default=0.005, ge=0, le=1)
    #: how long people's new states may wait to be written to the store and its changelog, as Kafka Streams' record
    #: cache: a person changed by several batches meanwhile is written once. Alerts and risk records never wait for
    #: it; offsets are committed only once the states are stored, so after a crash up to this much of the stream is
    #: decided again (its outputs repeat, with the same alert ids). 0 stores each batch's states at once.
    store_interval: Duration = Field(default=1.0, ge=0, le=30)
    #: how soon the group notices a worker that died (the broker allows 6 s to 5 min)
    session_timeout: Duration = 30
    heartbeat_interval: Duration = 3
    #: how long a fetch may wait at the broker for new records; faust fixes it at 1.5 s, which
    #: holds back records of a busy partition behind a long poll on quiet ones (see the README)
    fetch_max_wait: Duration = Field(default=0.025, gt=0, le=1.5)
    #: the most records one read from the consumer hands on (faust's default is everything fetched), and the
    #: most events the ingest agent's intake holds per partition before that partition waits to be read again
    poll_records: int = Field(default=2_000, ge=1)
    #: how long the producer waits to fill a batch of faust's own sends (the alert books' changelog, silences,
    #: some audit records); the record batches the agents build (streams/agents/produce.py) go out at once
    producer_linger: Duration = Field(default=0.005, ge=0, le=0.1)
    #: records waiting on a held partition and none read for this long is a stall (see streams/agents/watchdog.py)
    stall_timeout: Duration = Field(default=60, gt=0)
    #: still stalled (or a send, or the watchdog, stuck) this long: exit for the supervisor to restart the worker
    stall_exit: Duration = Field(default=180, gt=0)


class WebSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=6066, ge=1, le=65535)
    public_url: str | None = None


class ConsoleSettings(_Section):
    """The care-team console: pages on the worker's web server (console/, streams/agents/console.py)."""

    enabled: bool = True
    #: the environment variable holding the key that signs session cookies (16 bytes or more). Unset, each
    #: start makes a random key: sign-ins end at a restart, and a session works only on the worker that made it.
    session_secret_env: str = Field(default="CAREWATCH_CONSOLE_SECRET", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    session_ttl: Duration = Field(default=12 * 3600, gt=0)
    #: risk records read back from the person's partition of carewatch.risk for the trend on the alert page
    trend_window: int = Field(default=5_000, ge=10)
    trend_points: int = Field(default=60, ge=2)
    #: audit records read back from each partition for the audit view
    audit_window: int = Field(default=2_000, ge=10)


class IngestSettings(_Section):
    dedupe_window: Duration = 86400
    consent_required: bool = True
    #: events stamped further in the future than this are dead-lettered
    max_future_skew: Duration = 3600
    #: a bound on the dedupe memory of one person within the window. At most 20,000: an id takes about 15 bytes
    #: of the person's state (24 at most; 40 in states written before version 3, so 800 KB at the bound), which is
    #: one record of the changelog, and a record past the broker's 1 MB would be sent again for good while no event
    #: is handled
    dedupe_max_per_subject: int = Field(default=20_000, ge=1, le=20_000)


class DetectionSettings(_Section):
    """Model-driven alerting; safety rules ignore all of it (CONTRACT §2).

    A level is raised once fused risk has stayed at or above its high mark
    for `persistence`, and cleared when risk falls below its low mark.
    """

    # Tuned on a synthetic cohort (1,000 people, seed 31) for >= 85% of crisis episodes alerted
    # 3+ days early at <= 1.5 false alerts per 100 person-days; see README, "The decision core".
    watch_high: float = Field(default=0.25, gt=0, le=1)
    watch_low: float = Field(default=0.175, ge=0, le=1)
    urgent_high: float = Field(default=0.425, gt=0, le=1)
    urgent_low: float = Field(default=0.3, ge=0, le=1)
    persistence: Duration = 0
    persistence_events: int = Field(default=3, ge=1)
    #: no second alert for the same person and reason within this time (a rise in severity still alerts)
    cooldown: Duration = 7 * 86400
    #: an event older than this behind the person's newest event raises no model-driven alert
    max_event_age: Duration = 48 * 3600
    #: weight of a person's text-risk average in the fused risk (noisy-OR with the deviation score)
    text_weight: float = Field(default=0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _marks_ordered(self) -> "DetectionSettings":
        if not self.watch_low <= self.watch_high:
            raise PydanticCustomError("config", "detection: watch_low must not be above watch_high")
        if not self.urgent_low <= self.urgent_high:
            raise PydanticCustomError("config", "detection: urgent_low must not be above urgent_high")
        if not self.watch_high <= self.urgent_high:
            raise PydanticCustomError("config", "detection: watch_high must not be above urgent_high")
        return self


class ModelSettings(_Section):
    registry: str | None = None
    threads: int = Field(default=1, ge=1)
    #: model name -> version; missing names use the newest in the registry
    live: dict[str, int] = {}
    shadow: dict[str, int] = {}
    crisis_lexicon: int | None = None


class GatewayClient(_Section):
    token_sha256: Sha256
    #: glob patterns of the CloudEvents `source` values this client may publish
    sources: list[str] = ["*"]


class GatewaySettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    max_events: int = Field(default=500, ge=1)
    #: how long a request waits for the broker to take its events; then the ones not taken are answered as failed
    #: (503: send again), rather than the request hanging for the producer's 40 s and past most clients' timeouts
    publish_timeout: Duration = Field(default=10, gt=0)
    clients: dict[str, GatewayClient] = {}


class Settings(AlertingConfig):
    """The whole configuration file."""

    kafka: KafkaSettings = KafkaSettings()
    topics: TopicsSettings = TopicsSettings()
    worker: WorkerSettings = WorkerSettings()
    web: WebSettings = WebSettings()
    console: ConsoleSettings = ConsoleSettings()
    ingest: IngestSettings = IngestSettings()
    gateway: GatewaySettings = GatewaySettings()
    detection: DetectionSettings = DetectionSettings()
    models: ModelSettings = ModelSettings()

    @model_validator(mode="after")
    def _team_detection_overrides(self) -> "Settings":
        for name, team in self.care_teams.items():
            if team.detection:
                try:
                    DetectionSettings.model_validate(self.detection.model_dump() | team.detection)
                except ValidationError as exc:
                    error = exc.errors()[0]
                    where = f"care_teams.{name}.detection"
                    message = (f"{where}: {error['msg'].removeprefix('detection: ')}" if error["type"] == "config"
                               else f"{where}.{_describe(error)}")
                    raise PydanticCustomError("config", message) from None
        return self

    def detection_for(self, care_team: str) -> DetectionSettings:
        """The detection settings of a care team: the defaults with its overrides."""
        team = self.care_teams.get(care_team)
        if team is None or not team.detection:
            return self.detection
        return DetectionSettings.model_validate(self.detection.model_dump() | team.detection)

    @property
    def public_url(self) -> str:
        return (self.web.public_url or f"http://127.0.0.1:{self.web.port}").rstrip("/")


def load(path: str | Path | None = None, *, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the file (if any), apply environment overrides, validate."""
    raw: Any = {}
    if path is not None:
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the configuration file ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    _apply_environment(raw, os.environ if environ is None else environ)
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError("; ".join(_describe(error) for error in exc.errors())) from None


def _apply_environment(raw: dict, environ: Mapping[str, str]) -> None:
    for name, text in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = name[len(ENV_PREFIX):].lower().split("__")
        node = raw
        for key in path[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        try:
            node[path[-1]] = yaml.safe_load(text)
        except yaml.YAMLError:
            node[path[-1]] = text


def _describe(error: Mapping[str, Any]) -> str:
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]).lstrip(".")
    kind = error["type"]
    if kind == "extra_forbidden":
        message = "unknown key"
    elif kind == "missing":
        message = "required key is missing"
    elif kind in ("config",):
        return error["msg"]
    else:
        message = error["msg"]
        message = message[0].lower() + message[1:]
        if kind not in ("sha256", "duration") and not isinstance(error.get("input"), (dict, list)):
            message += f", got {error['input']!r}"
    return f"{path}: {message}" if path else message
