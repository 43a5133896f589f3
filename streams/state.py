"""What carewatch keeps about one person between events.

A plain, bounded, serialisable value: the faust worker keeps it in a table
(RocksDB + changelog), the offline replay in a dict. It never holds free
text: consent history and hashed event keys only, for now.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from .consent import ConsentLedger
from .dedupe import SeenIds

__all__ = ["PersonState"]

VERSION = 1


@dataclass(slots=True)
class PersonState:
    consent: ConsentLedger = field(default_factory=ConsentLedger)
    seen: SeenIds = field(default_factory=SeenIds)

    def dumps(self) -> bytes:
        return orjson.dumps({"v": VERSION, "consent": self.consent.to_dict(), "seen": self.seen.to_list()})

    @classmethod
    def loads(cls, raw: bytes) -> "PersonState":
        obj = orjson.loads(raw)
        return cls(consent=ConsentLedger(obj["consent"]), seen=SeenIds.from_list(obj["seen"]))
