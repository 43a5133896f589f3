"""The one code path: records and people's state in, outcomes, risk and alerts out.

The faust worker and the offline replay (`carewatch evaluate`) both call
`Pipeline.handle_batch`, so an event is validated, deduplicated, checked for
consent, turned into features, scored, checked by the safety rules and run
through detection the same way everywhere. A batch is handled in three
passes: admit each record (validation, dedupe, consent, safety rules,
features) in order; score every admitted event with one model call per
model; decide each in order (fusion, detection, alerts). The result equals
handling the records one by one.

Every record ends in exactly one `Outcome`; nothing raises out of
`handle_batch`. A safety rule's alert never depends on a model: if the
features, scoring or detection fail, the rules still alert and the risk
record says the scores are missing.
"""

from __future__ import annotations

import enum
import logging
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from alerts.alert import Alert, Reason, alert_id
from alerts.routing import owner
from models.crisis import CrisisDetector
from models.registry import Registry
from models.scoring import Scorer

from .config import Settings
from .dedupe import event_key
from .detection import fuse, observe_text, step
from .events import CONSENT, TEXT, Event, parse
from .exceptions import InvalidEvent
from .rules import Finding, SafetyRules
from .state import PersonState

__all__ = ["Outcome", "Pipeline", "Result", "StateStore"]

log = logging.getLogger(__name__)

#: a safety-rule alert says how old its event is once it is older than this
LATE_NOTICE_SECONDS = 3600
SCORE_DIGITS = 4


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
    alerts: tuple[Alert, ...] = ()


@dataclass(slots=True)
class _Admitted:
    index: int
    event: Event
    state: PersonState
    team: str
    findings: list[Finding]
    #: None when the features failed: the event is not scored, its safety rules still alert
    vector: list[float] | None
    text: str | None
    versions: dict[str, str] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    shadow: dict[str, float] = field(default_factory=dict)
    #: the deviation score as the model gave it, unrounded, and that model's ref: what `_explain` starts from
    deviation: tuple[float, str] | None = None


class Pipeline:
    def __init__(self, *, settings: Settings, scorer: Scorer, rules: SafetyRules) -> None:
        self._settings = settings
        self._scorer = scorer
        self._rules = rules
        self._stream_time = float("-inf")
        #: care team -> its detection settings (the defaults with its overrides), built once per team
        self._detection: dict[str, Any] = {}
        #: seconds spent per stage, summed over every call: validate, admit, rules, features, score, detect, explain
        self.timings: Counter[str] = Counter()

    @classmethod
    def from_settings(cls, settings: Settings) -> "Pipeline":
        """Models and lexicon from the registry, as `models:` in the settings says."""
        m = settings.models
        registry = Registry(root=m.registry) if m.registry else Registry()
        scorer = Scorer(registry=registry, threads=m.threads, live={"text-risk": m.live.get("text-risk"),
                                                                     "deviation": m.live.get("deviation")},
                        shadow=m.shadow)
        crisis = CrisisDetector.load(registry.card("crisis-lexicon", m.crisis_lexicon).path)
        return cls(settings=settings, scorer=scorer, rules=SafetyRules(crisis=crisis))

    @property
    def scorer(self) -> Scorer:
        return self._scorer

    @property
    def model_versions(self) -> dict[str, str]:
        return {**self._scorer.versions, "crisis-lexicon": self._rules.version}

    def handle(self, raw: bytes, *, states: StateStore, now: float | None, content_type: str | None = None,
               check_future: bool = True) -> Result:
        return self.handle_batch([(raw, content_type)], states=states, now=now, check_future=check_future)[0]

    def handle_batch(
        self,
        records: Sequence[tuple[bytes, str | None]],
        *,
        states: StateStore,
        now: float | None,
        check_future: bool = True,
    ) -> list[Result]:
        """Take each record (value, content-type header) to its outcome, updating `states`.

        `now` is the processing time (Unix seconds); None means stream time,
        the newest event time seen so far, which keeps the replay deterministic.
        """
        cache: dict[str, PersonState] = {}
        results: list[Result | None] = [None] * len(records)
        admitted: list[_Admitted] = []
        timings = self.timings
        for index, (raw, content_type) in enumerate(records):
            started = time.perf_counter()
            try:
                event = parse(raw, content_type=content_type, now=now if check_future and now is not None else None,
                              max_future_skew=self._settings.ingest.max_future_skew)
            except InvalidEvent as error:
                results[index] = Result(Outcome.DEAD_LETTERED, error=error.detached())
                continue
            finally:
                timings["validate"] += time.perf_counter() - started
            self._stream_time = max(self._stream_time, event.timestamp)
            try:
                outcome = self._admit(index, event, cache, states, now if now is not None else self._stream_time)
            except Exception as exc:
                results[index] = _internal_error(event, exc)
                continue
            if isinstance(outcome, Result):
                results[index] = outcome
            else:
                admitted.append(outcome)
        versions = self.model_versions  # once per batch: a reload between batches shows in the next
        for item in admitted:
            item.versions = versions
        started = time.perf_counter()
        self._score(admitted)
        timings["score"] += time.perf_counter() - started
        started = time.perf_counter()
        for item in admitted:
            try:
                results[item.index] = self._decide(item, now if now is not None else self._stream_time)
            except Exception as exc:
                results[item.index] = _internal_error(item.event, exc)
        timings["detect"] += time.perf_counter() - started
        started = time.perf_counter()
        self._explain([r for r in results if r is not None and r.record is not None and r.record.get("explain")])
        timings["explain"] += time.perf_counter() - started
        for subject, state in cache.items():
            states.put(subject, state)
        return results  # type: ignore[return-value]

    # --- the three passes ------------------------------------------------------

    def _admit(self, index: int, event: Event, cache: dict[str, PersonState], states: StateStore,
               now: float) -> Result | _Admitted:
        ingest, timings = self._settings.ingest, self.timings
        started = time.perf_counter()
        state = cache.get(event.subject)
        if state is None:
            state = cache[event.subject] = states.get(event.subject) or PersonState()
        fresh = state.seen.check_and_add(event_key(event.source, event.id), now=now, window=ingest.dedupe_window,
                                         limit=ingest.dedupe_max_per_subject)
        if not fresh:
            return Result(Outcome.DUPLICATE, event=event)
        if event.type == CONSENT:
            state.consent.record(streams=event.data["streams"], granted=event.data["granted"], at=event.timestamp)
            return Result(Outcome.PROCESSED, event=event, record=_record(event, now))
        if ingest.consent_required and not state.consent.allows(event.stream, event.timestamp):
            return Result(Outcome.CONSENT_DROPPED, event=event)
        rules_started = time.perf_counter()
        timings["admit"] += rules_started - started
        findings = self._rules.evaluate(event)  # before and regardless of any model
        features_started = time.perf_counter()
        timings["rules"] += features_started - rules_started
        try:
            state.features.observe(event.stream, event.data, event.timestamp)
            vector: list[float] | None = state.features.vector(event.timestamp)
        except Exception as exc:  # a bug on the models' side must not hide what the rules found
            log.error("features failed for an event: %s", type(exc).__name__)
            vector = None
        timings["features"] += time.perf_counter() - features_started
        return _Admitted(
            index=index,
            event=event,
            state=state,
            team=owner(event.subject, self._settings.care_teams),
            findings=findings,
            vector=vector,
            text=event.data["text"] if event.type == TEXT else None,
        )

    def _score(self, admitted: list[_Admitted]) -> None:
        admitted = [item for item in admitted if item.vector is not None]
        if not admitted:
            return
        try:
            deviation = self._scorer.deviation([item.vector for item in admitted])
            texts = [item for item in admitted if item.text is not None]
            text = self._scorer.text_risk([item.text for item in texts])
        except Exception as exc:  # models must never stand between a safety rule and its alert
            log.error("scoring failed for a batch of %d: %s", len(admitted), type(exc).__name__)
            return
        # Scores are rounded: ONNX sums floats in an order that depends on the batch, and a difference
        # in the seventh digit must not make the worker and the replay decide differently.
        for i, item in enumerate(admitted):
            item.deviation = (float(deviation.live[i]), deviation.version)
            item.scores["deviation"] = round(item.deviation[0], SCORE_DIGITS)
            if deviation.shadow is not None:
                item.shadow["deviation"] = round(float(deviation.shadow[i]), SCORE_DIGITS)
        for i, item in enumerate(texts):
            item.scores["text-risk"] = round(float(text.live[i]), SCORE_DIGITS)
            if text.shadow is not None:
                item.shadow["text-risk"] = round(float(text.shadow[i]), SCORE_DIGITS)

    def _decide(self, item: _Admitted, now: float) -> Result:
        event, detection = item.event, item.state.detection
        settings = self._detection.get(item.team)
        if settings is None:
            settings = self._detection[item.team] = self._settings.detection_for(item.team)
        versions = item.versions
        alerts: list[Alert] = []
        for finding in item.findings:
            reasons = [Reason(finding.code, finding.detail)]
            age = now - event.timestamp
            if age > LATE_NOTICE_SECONDS:
                reasons.append(Reason("late_event", f"the event happened {_age(age)} before carewatch received it"))
            alerts.append(self._alert(item, finding.code, finding.severity, reasons, risk=1.0,
                                      versions={"crisis-lexicon": versions["crisis-lexicon"]}
                                      if finding.code == "crisis_language" else {}, now=now))
        risk = None
        level_alert = None
        if "deviation" in item.scores:
            try:
                if "text-risk" in item.scores:
                    observe_text(detection, item.scores["text-risk"])
                risk = fuse(item.scores["deviation"], detection.text_risk, text_weight=settings.text_weight)
                level_alert = step(detection, risk=risk, at=event.timestamp, settings=settings).alert
            except Exception as exc:  # a bug on the models' side must not hide what the rules found
                log.error("detection failed for an event: %s", type(exc).__name__)
                risk = level_alert = None
            if level_alert is not None:
                high = settings.watch_high if level_alert == "watch" else settings.urgent_high
                reason = Reason(f"risk_{level_alert}",
                                f"fused risk {risk:.2f} at or above the {level_alert} mark ({high:.2f}) "
                                f"for {settings.persistence_events} scores in a row or more")
                alerts.append(self._alert(item, reason.code, level_alert, [reason], risk=risk,
                                          versions={k: v for k, v in versions.items() if k != "crisis-lexicon"},
                                          now=now))
        record = _record(event, now) | {
            "scores": item.scores,
            "shadow": item.shadow,
            "risk": None if risk is None else round(risk, 6),
            "level": detection.level,
            "rules": [f.code for f in item.findings],
            "model_versions": versions,
            "evidence": event.id,
            "top_features": [],
            "alerts": [a.alert_id for a in alerts],
        }
        if risk is not None and (level_alert or risk >= settings.watch_low):
            record["explain"] = (item.vector, item.deviation)  # replaced by top_features in _explain
        return Result(Outcome.PROCESSED, event=event, record=record, alerts=tuple(alerts))

    def _explain(self, results: list[Result]) -> None:
        """Top contributing features, one batched call, for the elevated rows only.

        It starts from the scores `_score` gave (one call, so one model version) rather than
        scoring the rows again: that cost another ONNX run a batch, and a shadow run when one is set.
        """
        if not results:
            return
        asks = [r.record.pop("explain") for r in results]
        try:
            explained = self._scorer.explain([vector for vector, _ in asks], scores=[score for _, (score, _) in asks],
                                             version=asks[0][1][1])
        except Exception as exc:
            log.error("explaining %d scores failed: %s", len(results), type(exc).__name__)
            return
        for result, contributions in zip(results, explained):
            result.record["top_features"] = [[name, value] for name, value in contributions]

    def _alert(self, item: _Admitted, rule: str, severity: str, reasons: list[Reason], *, risk: float,
               versions: dict[str, str], now: float) -> Alert:
        event = item.event
        identifier = alert_id(event.subject, rule, [event.source, event.id])
        return Alert(
            alert_id=identifier,
            subject=event.subject,
            severity=severity,
            care_team=item.team,
            raised_at=now,
            reasons=tuple(reasons),
            risk_score=risk,
            evidence=(event.id,),
            model_versions=versions,
            ack_url=f"{self._settings.public_url}/v1/alerts/{identifier}/ack",
            page_url=f"{self._settings.public_url}/console/alerts/{identifier}",
        )


def _record(event: Event, now: float) -> dict[str, Any]:
    """The downstream trace of a processed event; never text."""
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


def _internal_error(event: Event, exc: Exception) -> Result:
    """A bug must not lose the event: dead-letter it, replayable. Frames only: a message could quote content."""
    log.error("internal error processing an event: %s\n%s", type(exc).__name__,
              "".join(traceback.format_tb(exc.__traceback__)))
    error = InvalidEvent("internal_error", f"carewatch failed to process this event ({type(exc).__name__}); replay it")
    return Result(Outcome.DEAD_LETTERED, event=event, error=error)


def _age(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f} hours"
    return f"{max(seconds, 0) / 60:.0f} minutes"
