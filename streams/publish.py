"""The publish SDK: validated events onto carewatch.events, keyed by subject.

Built on kafka-python with acks=all and idempotence, so an event the broker
acknowledged is on every in-sync replica and a retry never writes it twice.
Events are validated before sending: a bad one is never sent and its
receipt says why. Close (or leave the `with` block) to flush.

    with Publisher(bootstrap_servers="localhost:9092") as publisher:
        receipt = publisher.publish(event)      # dict, str or bytes
    receipt.ok, receipt.error, receipt.partition, receipt.offset
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaError

from .events import Event, parse
from .exceptions import InvalidEvent, PublishError
from .topics import EVENTS

__all__ = ["Publisher", "Receipt"]

CONTENT_TYPE = ("content-type", b"application/cloudevents+json")


class Receipt:
    """What became of one event: rejected before sending, or the broker's answer."""

    __slots__ = ("event", "error", "_future", "_metadata")

    def __init__(self, *, event: Event | None, error: Exception | None = None, future: Any = None) -> None:
        self.event = event
        self.error = error
        self._future = future
        self._metadata = None

    def wait(self, timeout: float | None = 30.0) -> "Receipt":
        """Block until the broker answered (a no-op for rejected events)."""
        if self._future is not None and self._metadata is None and self.error is None:
            try:
                self._metadata = self._future.get(timeout=timeout)
            except KafkaError as exc:
                self.error = PublishError(f"the broker did not take the event: {type(exc).__name__}")
        return self

    @property
    def ok(self) -> bool:
        self.wait()
        return self.error is None

    @property
    def rejected(self) -> bool:
        return isinstance(self.error, InvalidEvent)

    @property
    def partition(self) -> int | None:
        return self._metadata.partition if self._metadata is not None else None

    @property
    def offset(self) -> int | None:
        return self._metadata.offset if self._metadata is not None else None


class Publisher:
    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topic: str = EVENTS,
        client_id: str = "carewatch-publish",
        linger_ms: int = 5,
        max_future_skew: float = 3600.0,
    ) -> None:
        self._topic = topic
        self._max_future_skew = max_future_skew
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers.split(","),
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=linger_ms,
        )
        self._closed = False

    def publish(self, event: Mapping[str, Any] | str | bytes) -> Receipt:
        """Validate one event and send it if valid; never raises for bad input."""
        try:
            raw = _as_bytes(event)
            valid = parse(raw, now=time.time(), max_future_skew=self._max_future_skew)
        except InvalidEvent as error:
            return Receipt(event=None, error=error.detached())
        future = self._producer.send(
            self._topic, value=raw, key=valid.subject.encode(), headers=[CONTENT_TYPE]
        )
        return Receipt(event=valid, future=future)

    def publish_many(self, events: Iterable[Mapping[str, Any] | str | bytes]) -> list[Receipt]:
        """Publish all, flush, and return every receipt with its answer."""
        receipts = [self.publish(event) for event in events]
        self.flush()
        return [receipt.wait() for receipt in receipts]

    def flush(self, timeout: float | None = None) -> None:
        self._producer.flush(timeout=timeout)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._producer.flush()
        self._producer.close()

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _as_bytes(event: Mapping[str, Any] | str | bytes) -> bytes:
    if isinstance(event, bytes):
        return event
    if isinstance(event, str):
        return event.encode("utf-8", "surrogatepass")
    try:
        return orjson.dumps(event)
    except TypeError:
        raise InvalidEvent("malformed_json", "event: cannot be encoded as JSON") from None
