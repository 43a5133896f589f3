"""Which people's escalation ticks are on their way, for the alerting agent's timer."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["Ticks"]


class Ticks:
    """The people whose tick is on its way: one at a time each, and another once one has gone unanswered for
    `patience` seconds. A tick dead-lettered, or answered by the worker that held the person during a rebalance,
    would otherwise hold their escalation back for good; a second tick escalates nothing twice (the first moved
    the deadlines on)."""

    def __init__(self, *, patience: float = 30.0) -> None:
        self.patience = patience
        self._sent: dict[str, float] = {}  # subject -> when its tick was sent

    def due(self, deadlines: Mapping[str, float], *, now: float) -> list[str]:
        """The people to send a tick now, given their next deadlines."""
        if len(self._sent) > len(deadlines):  # ticks never answered, of people with nothing due any more
            self._sent = {subject: at for subject, at in self._sent.items() if subject in deadlines}
        due = [subject for subject, at in deadlines.items()
               if at <= now and now - self._sent.get(subject, -self.patience) >= self.patience]
        self._sent.update(dict.fromkeys(due, now))
        return due

    def answered(self, subject: str) -> None:
        self._sent.pop(subject, None)

    def clear(self) -> None:
        self._sent.clear()
