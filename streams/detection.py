"""Detection: from fused risk to a severity, the way a care team can live with.

Model-driven alerts only (safety rules bypass all of this, CONTRACT §2):

* hysteresis: a level (watch, urgent) is "above" from the first score at or
  over its high mark until a score falls below its low mark;
* persistence: a level is raised once it has been above for `persistence`
  of event time and `persistence_events` scores, so one odd reading does
  not page anyone;
* cool-down: no second alert for the same person and level within
  `cooldown`; a rise in severity alerts all the same;
* event time: a score from an event older than `max_event_age` behind the
  person's newest event moves nothing (a late backlog cannot page anyone
  about last week), while a safety-rule event always alerts, saying how old
  it is.

Pure and deterministic: the worker and the offline replay step the same
state with the same scores and raise the same alerts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import DetectionSettings

__all__ = ["DetectionState", "Step", "fuse", "step"]

LEVELS = ("watch", "urgent")
TEXT_ALPHA = 2 / (5 + 1)


@dataclass(slots=True)
class DetectionState:
    #: level -> [event time since which risk has been above its high mark (hysteresis), scores since]
    above: dict[str, list[float]] = field(default_factory=dict)
    #: the level raised now, if any
    level: str | None = None
    #: reason code -> event time of the last alert for it
    last_alert: dict[str, float] = field(default_factory=dict)
    #: EWMA of the person's text-risk scores
    text_risk: float = 0.0
    #: the newest event time seen for the person
    newest: float = float("-inf")

    def to_list(self) -> list[Any]:
        return [self.above, self.level, self.last_alert, self.text_risk, self.newest if self.newest > -1e18 else None]

    @classmethod
    def from_list(cls, raw: list[Any]) -> "DetectionState":
        above, level, last_alert, text_risk, newest = raw
        return cls(dict(above), level, dict(last_alert), text_risk, float("-inf") if newest is None else newest)


@dataclass(frozen=True, slots=True)
class Step:
    """What one score did: the level to alert at (if any), and whether the event counted."""

    alert: str | None
    late: bool
    suppressed: str | None = None


def fuse(deviation: float, text_risk: float, *, text_weight: float) -> float:
    """Noisy-OR of the deviation score and the weighted text-risk average."""
    return 1 - (1 - deviation) * (1 - text_weight * text_risk)


def observe_text(state: DetectionState, score: float) -> None:
    state.text_risk = (1 - TEXT_ALPHA) * state.text_risk + TEXT_ALPHA * score


def step(state: DetectionState, *, risk: float, at: float, settings: DetectionSettings) -> Step:
    """Advance the person's detection state by one score at event time `at`."""
    state.newest = max(state.newest, at)
    if at < state.newest - settings.max_event_age:
        return Step(alert=None, late=True)
    marks = {"watch": (settings.watch_high, settings.watch_low), "urgent": (settings.urgent_high, settings.urgent_low)}
    for level, (high, low) in marks.items():
        if level in state.above:
            if risk < low:
                del state.above[level]
            else:
                state.above[level][1] += 1
        elif risk >= high:
            state.above[level] = [at, 1]
    persisted = [level for level in LEVELS if level in state.above
                 and at - state.above[level][0] >= settings.persistence
                 and state.above[level][1] >= settings.persistence_events]
    candidate = persisted[-1] if persisted else None
    previous = state.level
    still_above = [level for level in LEVELS if level in state.above]
    # the raised level follows the hysteresis down, and the persistence up
    state.level = max(filter(None, (candidate, previous if previous in still_above else None)),
                      key=LEVELS.index, default=None)
    if candidate is None or (previous is not None and LEVELS.index(candidate) <= LEVELS.index(previous)):
        return Step(alert=None, late=False)
    reason = f"risk_{candidate}"
    rising = previous is not None or any(
        at - state.last_alert.get(f"risk_{lower}", float("-inf")) < settings.cooldown
        for lower in LEVELS[:LEVELS.index(candidate)]
    )
    last = state.last_alert.get(reason)
    if last is not None and at - last < settings.cooldown and not rising:
        return Step(alert=None, late=False, suppressed=reason)
    state.last_alert[reason] = at
    return Step(alert=candidate, late=False)
