"""The one code path: a record and a person's state in, one outcome out.

The faust worker and the offline replay both call `Pipeline.handle`, so an
event is validated, deduplicated and checked for consent the same way
everywhere. Every record ends in exactly one `Outcome`; nothing raises out
of `handle`, so no record, however malformed, can stop the caller.
"""

from __future__ import annotations

import enum
import logging
import traceback
from dataclasses import dataclass
from typing import Any, Protocol

from .config import IngestSettings
from .dedupe import event_key
from .events import CONSENT, Event, parse
from .exceptions import InvalidEvent
from .state import PersonState

__all__ = ["Outcome", "Pipeline", "Result", "StateStore"]

log = logging.getLogger(__name__)


class Outcome(str, enum.Enum):
    PROCESSED = "processed"
    CONSENT_DROPPED = "consent_dropped"
    DUPLICATE = "duplicate"
    DEAD_LETTERED = "dead_lettered"


class StateStore(Protocol):
    """Where person states live: a faust table in the worker, a dict offline."""

    def get(self, subject: str) -> PersonState | None: ...

    def put(self, subject: str, state: PersonState) -> None: ...


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    event: Event | None = None
    error: InvalidEvent | None = None
    #: what a processed event leaves downstream (carewatch.risk); never text
    record: dict[str, Any] | None = None


class Pipeline:
    def __init__(self, *, ingest: IngestSettings) -> None:
        self._ingest = ingest

    def handle(
        self,
        raw: bytes,
        *,
        states: StateStore,
        now: float,
        content_type: str | None = None,
        check_future: bool = True,
    ) -> Result:
        """Take one record value to its outcome, updating `states`."""
        try:
            event = parse(
                raw,
                content_type=content_type,
                now=now if check_future else None,
                max_future_skew=self._ingest.max_future_skew,
            )
        except InvalidEvent as error:
            return Result(Outcome.DEAD_LETTERED, error=error)
        try:
            return self._apply(event, states, now)
        except Exception as exc:  # a bug must not lose the event: dead-letter it, replayable
            # The traceback's frames only: an exception message could quote event content.
            log.error(
                "internal error processing an event: %s\n%s",
                type(exc).__name__,
                "".join(traceback.format_tb(exc.__traceback__)),
            )
            error = InvalidEvent(
                "internal_error", f"carewatch failed to process this event ({type(exc).__name__}); replay it"
            )
            return Result(Outcome.DEAD_LETTERED, event=event, error=error)

    def _apply(self, event: Event, states: StateStore, now: float) -> Result:
        ingest = self._ingest
        state = states.get(event.subject) or PersonState()
        fresh = state.seen.check_and_add(
            event_key(event.source, event.id),
            now=now,
            window=ingest.dedupe_window,
            limit=ingest.dedupe_max_per_subject,
        )
        if not fresh:
            return Result(Outcome.DUPLICATE, event=event)
        if event.type == CONSENT:
            state.consent.record(streams=event.data["streams"], granted=event.data["granted"], at=event.timestamp)
        elif ingest.consent_required and not state.consent.allows(event.stream, event.timestamp):
            states.put(event.subject, state)  # remembers the id, so a repeat counts as a duplicate
            return Result(Outcome.CONSENT_DROPPED, event=event)
        states.put(event.subject, state)
        return Result(Outcome.PROCESSED, event=event, record=_record(event, now))


def _record(event: Event, now: float) -> dict[str, Any]:
    """The downstream trace of a processed event. Scores join it with the models."""
    return {
        "event_id": event.id,
        "source": event.source,
        "subject": event.subject,
        "type": event.type,
        "event_time": event.time.isoformat(),
        "processed_at": now,
        "scores": {},
        "risk": None,
        "model_versions": {},
    }
