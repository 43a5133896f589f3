"""Memory of the events a person has already had, for CONTRACT §1 dedupe.

`(source, id)` is unique: a repeat seen within the window is a duplicate.
The window runs on processing time (when carewatch first saw the event),
so a replayed backlog is still recognised. Keys are short hashes, so the
memory holds no event content; it is bounded per person by count too.
"""

from __future__ import annotations

import base64
import hashlib
import math
from typing import Any

__all__ = ["SeenIds", "event_key"]

#: characters of a key: 64 bits in base64 (the twelfth, padding, is left off)
KEY_CHARS = 11


def event_key(source: str, event_id: str) -> str:
    """A 64-bit hash of (source, id), in base64: collisions need ~4 billion events per person."""
    digest = hashlib.blake2b(f"{source}\x00{event_id}".encode(), digest_size=8).digest()
    return base64.b64encode(digest)[:KEY_CHARS].decode("ascii")


class SeenIds:
    """Keys in the order first seen, each with when it was seen, in whole milliseconds rounded up: an id is
    remembered for at least the window, and a state read back decides exactly as the one written.

    Kept as it is encoded, so that writing a state (once a batch for every person in it) costs nothing here: the
    keys as one text, oldest first, and their times as differences from the one before (the first from 0), about
    15 bytes an id where (hex key, time) pairs took 33. A set answers whether a key is in.
    """

    __slots__ = ("_ids", "_ms", "_keys", "_last")

    def __init__(self, ids: str = "", ms: list[int] | None = None) -> None:
        ms = ms if ms is not None else []
        if len(ids) != KEY_CHARS * len(ms):
            raise ValueError(f"seen: {len(ids)} characters of keys for {len(ms)} times")
        self._ids = ids
        self._ms = ms
        self._keys = {ids[i:i + KEY_CHARS] for i in range(0, len(ids), KEY_CHARS)}
        self._last = sum(ms)  # when the newest was seen

    def __len__(self) -> int:
        return len(self._ms)

    def check_and_add(self, key: str, *, now: float, window: float, limit: int) -> bool:
        """True when `key` is new within `window` (and remember it); False for a repeat."""
        now_ms = math.ceil(now * 1000)
        self._forget_before(now_ms - window * 1000)
        if key in self._keys:
            return False
        self._append(key, now_ms)
        if len(self._ms) > limit:
            self._drop(len(self._ms) - limit)
        return True

    def _append(self, key: str, at_ms: int) -> None:
        self._keys.add(key)
        self._ids += key
        self._ms.append(at_ms - self._last if self._ms else at_ms)
        self._last = at_ms

    def _forget_before(self, cutoff_ms: float) -> None:
        ms, count, at = self._ms, 0, 0
        while count < len(ms) and at + ms[count] < cutoff_ms:
            at += ms[count]
            count += 1
        if count:
            self._drop(count)

    def _drop(self, count: int) -> None:
        """Forget the `count` oldest, at once: the text and the times are copied once, whatever the count."""
        ids, ms = self._ids, self._ms
        self._keys.difference_update(ids[i:i + KEY_CHARS] for i in range(0, KEY_CHARS * count, KEY_CHARS))
        first = sum(ms[:count + 1])  # when the oldest kept was seen
        self._ids = ids[KEY_CHARS * count:]
        del ms[:count]
        if ms:
            ms[0] = first

    def to_json(self) -> dict[str, Any]:
        return {"ids": self._ids, "ms": self._ms}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "SeenIds":
        return cls(obj["ids"], obj["ms"])

    @classmethod
    def from_pairs(cls, items: list[list]) -> "SeenIds":
        """State versions 1 and 2: (hex key, time in seconds) pairs, oldest first."""
        seen = cls()
        for key, at in items:
            seen._append(base64.b64encode(bytes.fromhex(key))[:KEY_CHARS].decode("ascii"), math.ceil(at * 1000))
        return seen
