"""What carewatch keeps about one person between events.

A plain, bounded, serialisable value: the faust worker keeps it in a table
(RocksDB + changelog), the offline replay in a dict. It never holds free
text: consent history, hashed ids of recent events, the feature state
(numbers), and the detection state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from models.features import PersonFeatures

from .consent import ConsentLedger
from .dedupe import SeenIds
from .detection import DetectionState

__all__ = ["PersonState"]

VERSION = 3


@dataclass(slots=True)
class PersonState:
    consent: ConsentLedger = field(default_factory=ConsentLedger)
    seen: SeenIds = field(default_factory=SeenIds)
    features: PersonFeatures = field(default_factory=PersonFeatures)
    detection: DetectionState = field(default_factory=DetectionState)

    def dumps(self) -> bytes:
        return orjson.dumps({
            "v": VERSION,
            "consent": self.consent.to_dict(),
            "seen": self.seen.to_json(),
            "features": self.features.to_dict(),
            "detection": self.detection.to_list(),
        })

    @classmethod
    def loads(cls, raw: bytes) -> "PersonState":
        obj = orjson.loads(raw)
        version = obj.get("v", 1)
        seen = SeenIds.from_json(obj["seen"]) if version >= 3 else SeenIds.from_pairs(obj["seen"])
        if version < 2:  # version 1 held consent and dedupe only
            return cls(consent=ConsentLedger(obj["consent"]), seen=seen)
        return cls(
            consent=ConsentLedger(obj["consent"]),
            seen=seen,
            features=PersonFeatures.from_dict(obj["features"]),
            detection=DetectionState.from_list(obj["detection"]),
        )
