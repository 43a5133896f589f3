"""Memory of the events a person has already had, for CONTRACT §1 dedupe.

`(source, id)` is unique: a repeat seen within the window is a duplicate.
The window runs on processing time (when carewatch first saw the event),
so a replayed backlog is still recognised. Keys are short hashes, so the
memory holds no event content; it is bounded per person by count too.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import math
from typing import Any

__all__ = ["SeenIds", "event_key"]


def event_key(source: str, event_id: str) -> bytes:
    """A 64-bit hash of (source, id): collisions need ~4 billion events per person."""
    return hashlib.blake2b(f"{source}\x00{event_id}".encode(), digest_size=8).digest()


class SeenIds:
    """Keys in the order first seen, each with when it was seen, in whole milliseconds rounded up: an id is
    remembered for at least the window, and a state read back decides exactly as the one written."""

    __slots__ = ("_seen",)

    def __init__(self, seen: dict[bytes, int] | None = None) -> None:
        self._seen: dict[bytes, int] = seen if seen is not None else {}

    def __len__(self) -> int:
        return len(self._seen)

    def check_and_add(self, key: bytes, *, now: float, window: float, limit: int) -> bool:
        """True when `key` is new within `window` (and remember it); False for a repeat."""
        now_ms = math.ceil(now * 1000)
        self.forget_before(now_ms - window * 1000)
        if key in self._seen:
            return False
        self._seen[key] = now_ms
        while len(self._seen) > limit:
            del self._seen[next(iter(self._seen))]
        return True

    def forget_before(self, cutoff_ms: float) -> None:
        seen = self._seen
        while seen:
            oldest = next(iter(seen))
            if seen[oldest] >= cutoff_ms:
                break
            del seen[oldest]

    def to_json(self) -> dict[str, Any]:
        """The keys as one base64 text, oldest first, and their times as differences from the one before (the
        first from 0): about 16 bytes an id once encoded, where (hex key, time) pairs took 33."""
        times = list(self._seen.values())
        return {"ids": base64.b64encode(b"".join(self._seen)).decode("ascii"),
                "ms": [b - a for a, b in zip([0, *times], times)]}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "SeenIds":
        raw = base64.b64decode(obj["ids"])
        keys = (raw[i:i + 8] for i in range(0, len(raw), 8))
        return cls(dict(zip(keys, itertools.accumulate(obj["ms"]), strict=True)))

    @classmethod
    def from_pairs(cls, items: list[list]) -> "SeenIds":
        """State versions 1 and 2: (hex key, time in seconds) pairs, oldest first."""
        return cls({bytes.fromhex(key): math.ceil(at * 1000) for key, at in items})
