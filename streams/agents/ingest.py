"""The ingest agent: every record of carewatch.events to exactly one outcome.

Dead letters go to carewatch.events.dlq byte for byte with the two headers
of CONTRACT §1; processed events leave a record on carewatch.risk (the
downstream trace reconciliation counts on). Sends are flushed before the
consumer commits the offset (faust), so delivery is at least once.

Faust acknowledges an event even when the agent's body raises, so the body
must not raise: the pipeline never does, and a send that fails is retried
with backoff, holding the partition back rather than losing the event.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson

from ..pipeline import Outcome, StateStore

if TYPE_CHECKING:
    from ..app import Worker

__all__ = ["install"]

log = logging.getLogger(__name__)

_ERROR_HEADERS = ("carewatch-error", "carewatch-error-code")
_BACKOFF = (0.1, 0.5, 1.0, 2.0, 5.0)


def install(worker: Worker, states: StateStore) -> None:
    pipeline, metrics = worker.pipeline, worker.metrics

    @worker.app.agent(worker.events, name="carewatch.ingest")
    async def ingest(stream):
        async for event in stream.events():
            message = event.message
            headers = list(message.headers or ())
            raw = message.value  # with the raw codec, the record's bytes as they arrived (None for a tombstone)
            result = pipeline.handle(raw or b"", states=states, now=time.time(), content_type=_content_type(headers))
            metrics.events.labels(result.outcome.value).inc()
            if result.outcome is Outcome.DEAD_LETTERED:
                error = result.error
                kept = [(k, v) for k, v in headers if k.lower() not in _ERROR_HEADERS]
                await _send(
                    worker.dlq,
                    key=message.key,
                    value=raw,
                    headers=kept + [
                        ("carewatch-error", str(error).encode("ascii", "replace")),
                        ("carewatch-error-code", error.code.encode("ascii")),
                    ],
                )
                metrics.dead_letters.labels(error.code).inc()
            elif result.outcome is Outcome.PROCESSED:
                subject = result.event.subject.encode()
                if message.key != subject:
                    metrics.key_mismatch.inc()
                await _send(worker.risk, key=subject, value=orjson.dumps(result.record))
                for alert in result.alerts:
                    await _send(worker.alerts, key=subject, value=orjson.dumps(alert.to_dict()))
                    metrics.alerts.labels(alert.severity, alert.reasons[0].code).inc()


async def _send(topic: Any, **message: Any) -> None:
    """Send, retrying until the producer takes the record; only cancellation stops it."""
    for attempt in itertools.count():
        try:
            await topic.send(**message)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # classified by type name only: no record content in logs
            delay = _BACKOFF[min(attempt, len(_BACKOFF) - 1)]
            log.warning("send to %s failed (%s); retrying in %.1f s", topic.get_topic_name(), type(exc).__name__, delay)
            await asyncio.sleep(delay)


def _content_type(headers: list[tuple[str, bytes]]) -> str | None:
    for key, value in headers:
        if key.lower() == "content-type":
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return None
