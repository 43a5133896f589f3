"""Consent per person and stream, by event time (CONTRACT §1).

A grant covers events at or after its time; a revoke stops processing of
events at or after its time. Consent events may arrive out of order, so
the ledger keeps a short history per stream and answers "was this stream
granted at time t?" from the latest change at or before t. An event older
than every change kept is treated as not granted: privacy errs on the side
of not processing.
"""

from __future__ import annotations

import bisect

__all__ = ["ConsentLedger"]

#: changes kept per stream; older ones fall off the front
HISTORY = 32


class ConsentLedger:
    __slots__ = ("_history",)

    def __init__(self, history: dict[str, list[list]] | None = None) -> None:
        # stream -> [[time, granted], ...] sorted by time; ties keep arrival order
        self._history: dict[str, list[list]] = history if history is not None else {}

    def record(self, *, streams: list[str], granted: bool, at: float) -> None:
        for stream in dict.fromkeys(streams):
            changes = self._history.setdefault(stream, [])
            index = bisect.bisect_right([t for t, _ in changes], at)
            changes.insert(index, [at, granted])
            del changes[:-HISTORY]

    def allows(self, stream: str, at: float) -> bool:
        changes = self._history.get(stream)
        if not changes:
            return False
        index = bisect.bisect_right([t for t, _ in changes], at)
        return bool(index) and changes[index - 1][1]

    def to_dict(self) -> dict[str, list[list]]:
        return self._history
