"""Memory of the events a person has already had, for CONTRACT §1 dedupe.

`(source, id)` is unique: a repeat seen within the window is a duplicate.
The window runs on processing time (when carewatch first saw the event),
so a replayed backlog is still recognised. Keys are short hashes, so the
memory holds no event content; it is bounded per person by count too.
"""

from __future__ import annotations

import hashlib

__all__ = ["SeenIds", "event_key"]


def event_key(source: str, event_id: str) -> str:
    """A 64-bit hash of (source, id): collisions need ~4 billion events per person."""
    digest = hashlib.blake2b(f"{source}\x00{event_id}".encode(), digest_size=8)
    return digest.hexdigest()


class SeenIds:
    """Keys in the order first seen, each with when it was seen."""

    __slots__ = ("_seen",)

    def __init__(self, seen: dict[str, float] | None = None) -> None:
        self._seen: dict[str, float] = seen if seen is not None else {}

    def __len__(self) -> int:
        return len(self._seen)

    def check_and_add(self, key: str, *, now: float, window: float, limit: int) -> bool:
        """True when `key` is new within `window` (and remember it); False for a repeat."""
        self.forget_before(now - window)
        if key in self._seen:
            return False
        self._seen[key] = now
        while len(self._seen) > limit:
            del self._seen[next(iter(self._seen))]
        return True

    def forget_before(self, cutoff: float) -> None:
        seen = self._seen
        while seen:
            oldest = next(iter(seen))
            if seen[oldest] >= cutoff:
                break
            del seen[oldest]

    def to_list(self) -> list[tuple[str, float]]:
        """(key, time) pairs, oldest first: JSON arrays once encoded."""
        return list(self._seen.items())

    @classmethod
    def from_list(cls, items: list[list]) -> "SeenIds":
        return cls({key: at for key, at in items})
