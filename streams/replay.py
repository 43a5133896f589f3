"""Offline replay: the worker's code path over a file of events, for `carewatch evaluate`.

Events go through `Pipeline.handle_batch` in arrival order with states in a
dict and the clock at stream time (the newest event time seen), so a replay
raises the same alerts as the live worker on the same events and is
deterministic. The replay also keeps each scored event's scores, so
detection can be re-run over other thresholds without scoring again.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from alerts.alert import Alert

from .config import DetectionSettings
from .detection import DetectionState, fuse, observe_text, step
from .pipeline import Outcome, Pipeline
from .state import PersonState

__all__ = ["DictStates", "Replay", "Trace", "replay", "sweep"]


class DictStates(dict):
    """The replay's StateStore: states kept as objects in a dict.

    The worker's table stores them encoded; the encoding round trip is
    proven lossless by tests (features and detection state), so the replay
    skips it.
    """

    def put(self, subject: str, state: PersonState) -> None:
        self[subject] = state


@dataclass(frozen=True, slots=True)
class Trace:
    """One scored event, enough to re-run detection and to evaluate each model."""

    subject: str
    time: float
    deviation: float
    text_risk: float | None
    risk: float


@dataclass
class Replay:
    outcomes: Counter = field(default_factory=Counter)
    alerts: list[tuple[Alert, float]] = field(default_factory=list)  # with the triggering event's time
    traces: list[Trace] = field(default_factory=list)
    event_times: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    events: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)


def _batches(lines: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    iterator = iter(lines)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def replay(lines: Iterable[bytes], *, pipeline: Pipeline, batch: int = 256) -> Replay:
    out = Replay()
    states = DictStates()
    started = time.perf_counter()
    pipeline.timings.clear()
    for chunk in _batches(lines, batch):
        results = pipeline.handle_batch([(raw, None) for raw in chunk], states=states, now=None, check_future=False)
        out.events += len(chunk)
        for result in results:
            out.outcomes[result.outcome.value] += 1
            if result.outcome is not Outcome.PROCESSED or result.event is None:
                continue
            event = result.event
            out.event_times.setdefault(event.subject, []).append(event.timestamp)
            for alert in result.alerts:
                out.alerts.append((alert, event.timestamp))
            record = result.record
            if record and record.get("risk") is not None:
                out.traces.append(Trace(event.subject, event.timestamp, record["scores"]["deviation"],
                                        record["scores"].get("text-risk"), record["risk"]))
    out.seconds = time.perf_counter() - started
    out.stage_seconds = dict(pipeline.timings)
    return out


def sweep(run: Replay, settings: DetectionSettings, scales: Iterable[float]) -> list[tuple[float, list]]:
    """Detection re-run with every mark multiplied by each scale; safety-rule alerts kept as they were.

    Returns, per scale, the alerts as (subject, time, severity).
    """
    safety = [(a.subject, t, a.severity) for a, t in run.alerts if not a.reasons[0].code.startswith("risk_")]
    out = []
    for scale in scales:
        scaled = settings.model_copy(update={
            key: min(1.0, getattr(settings, key) * scale)
            for key in ("watch_high", "watch_low", "urgent_high", "urgent_low")
        })
        states: dict[str, DetectionState] = {}
        alerts = list(safety)
        for trace in run.traces:
            state = states.setdefault(trace.subject, DetectionState())
            if trace.text_risk is not None:
                observe_text(state, trace.text_risk)
            risk = fuse(trace.deviation, state.text_risk, text_weight=scaled.text_weight)
            decision = step(state, risk=risk, at=trace.time, settings=scaled)
            if decision.alert:
                alerts.append((trace.subject, trace.time, decision.alert))
        out.append((scale, alerts))
    return out
