"""Contract-shaped events for tests: valid ones of every type, and broken ones.

Deliberately small and independent of the simulator (models/), so that the
ingest tests do not move when the cohort does. All text here is synthetic.
"""

from __future__ import annotations

import copy
import itertools
import random
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

_counter = itertools.count()

TEXTS = [
    "Slept badly again, thinking about work the whole night.",
    "Good walk with the dog this morning, felt lighter.",
    "Hoy fue un día largo pero hablé con mi hermana.",
    "I'm dying to see the new film this weekend!",
    "Me muero de ganas de ver a mis amigos.",
    "Nothing special, just tired.",
]


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def event(kind: str, *, subject: str = "p-test01", source: str = "app://test/suite", when: datetime | None = None,
          event_id: str | None = None, **data: Any) -> dict[str, Any]:
    when = when or datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)
    defaults: dict[str, dict[str, Any]] = {
        "text": {"text": TEXTS[0], "channel": "journal", "lang": "en"},
        "survey": {"instrument": "phq9", "items": [1, 0, 2, 1, 0, 1, 0, 0, 0]},
        "wearable": {"metric": "sleep_duration", "value": 6.5, "unit": "h"},
        "consent": {"granted": True, "streams": ["text", "survey", "wearable"]},
    }
    # a survey given its instrument takes only what it was given (mood has no items)
    body = dict(data) if kind == "survey" and "instrument" in data else {**defaults[kind], **data}
    return {
        "specversion": "1.0",
        "id": event_id or f"evt-{next(_counter)}",
        "source": source,
        "type": f"org.carewatch.{kind}.v1",
        "subject": subject,
        "time": iso(when),
        "data": body,
    }


def random_valid(rng: random.Random, *, subject: str, source: str, when: datetime, event_id: str) -> dict[str, Any]:
    """One valid text, survey or wearable event with varied content."""
    kind = rng.choice(["text", "survey", "survey", "wearable", "wearable", "wearable"])
    if kind == "text":
        data = {"text": rng.choice(TEXTS), "channel": rng.choice(["journal", "chat", "checkin"]),
                "lang": rng.choice(["en", "es"])}
    elif kind == "survey":
        instrument = rng.choice(["phq9", "gad7", "mood", "cssrs_screener"])
        if instrument == "phq9":
            data = {"instrument": "phq9", "items": [rng.randint(0, 3) for _ in range(9)]}
        elif instrument == "gad7":
            data = {"instrument": "gad7", "items": [rng.randint(0, 3) for _ in range(7)]}
        elif instrument == "mood":
            data = {"instrument": "mood", "score": rng.randint(0, 10)}
        else:
            q6 = rng.random() < 0.1
            items = {f"q{i}": rng.random() < 0.1 for i in range(1, 6)} | {"q6": q6}
            if q6:
                items["q6_within_3_months"] = rng.random() < 0.5
            data = {"instrument": "cssrs_screener", "items": items}
    else:
        metric, unit, low, high = rng.choice([
            ("heart_rate", "beats/min", 45, 160), ("resting_heart_rate", "beats/min", 45, 90),
            ("hrv_rmssd", "ms", 10, 120), ("sleep_duration", "h", 3, 10), ("step_count", "steps", 0, 20000),
        ])
        value = rng.randint(low, high) if metric == "step_count" else round(rng.uniform(low, high), 1)
        data = {"metric": metric, "value": value, "unit": unit}
    return event(kind, subject=subject, source=source, when=when, event_id=event_id, **data)


def broken(rng: random.Random, valid: dict[str, Any]) -> tuple[bytes, str]:
    """A record that breaks one rule, and the error code it must earn."""
    choice = rng.randrange(12)
    e = copy.deepcopy(valid)
    if choice == 0:
        return b'{"specversion": "1.0", "id": ', "malformed_json"
    if choice == 1:
        return b'{"id": "\xff\xfe"}', "invalid_utf8"
    if choice == 2:
        return orjson.dumps([e]), "not_an_object"
    if choice == 3:
        del e["id"]
        return orjson.dumps(e), "missing_attribute"
    if choice == 4:
        e["specversion"] = "0.3"
        return orjson.dumps(e), "unsupported_specversion"
    if choice == 5:
        e["type"] = "org.carewatch.unknown.v1"
        return orjson.dumps(e), "unknown_type"
    if choice == 6:
        e["subject"] = "jane.doe@example.org"
        return orjson.dumps(e), "invalid_attribute"
    if choice == 7:
        e["type"], e["data"] = "org.carewatch.survey.v1", {"instrument": "phq9", "items": [0] * 8 + [4]}
        return orjson.dumps(e), "invalid_data_field"
    if choice == 8:
        e["type"] = "org.carewatch.survey.v1"
        e["data"] = {"instrument": "cssrs_screener", "items": {f"q{i}": i == 6 for i in range(1, 7)}}
        return orjson.dumps(e), "missing_data_field"
    if choice == 9:
        e["time"] = iso(datetime.now(timezone.utc) + timedelta(days=400))
        return orjson.dumps(e), "time_in_future"
    if choice == 10:
        e["type"], e["data"] = "org.carewatch.wearable.v1", {"metric": "heart_rate", "value": 70, "unit": "bpm"}
        return orjson.dumps(e), "invalid_data_field"
    e["type"], e["data"] = "org.carewatch.text.v1", {"text": "x" * 200_000, "channel": "chat"}
    return orjson.dumps(e), "too_large"
