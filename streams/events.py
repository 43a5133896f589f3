"""The event contract (CONTRACT.md §1), enforced in one place.

Pure: no Kafka or faust. The worker, the publish SDK, the HTTP gateway and
the offline replay all call `parse` (raw record bytes) or `validate` (an
already decoded object), so an event means the same thing everywhere.

Error messages name the field and the rule and never repeat a string from
the event: a subject may be an e-mail address by mistake and a text is
private, and both messages and codes travel to the DLQ headers and logs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from .exceptions import InvalidEvent

__all__ = [
    "CODES",
    "Event",
    "EVENT_TYPES",
    "MAX_EVENT_BYTES",
    "STREAMS",
    "parse",
    "validate",
]

TEXT = "org.carewatch.text.v1"
SURVEY = "org.carewatch.survey.v1"
WEARABLE = "org.carewatch.wearable.v1"
CONSENT = "org.carewatch.consent.v1"

#: event type -> the consent stream it belongs to ("consent" governs the others)
EVENT_TYPES: Mapping[str, str] = {TEXT: "text", SURVEY: "survey", WEARABLE: "wearable", CONSENT: "consent"}
STREAMS = ("text", "survey", "wearable")

#: A record larger than this is refused before it is parsed. The largest valid
#: event (10,000 four-byte characters plus attributes) stays well below it.
MAX_EVENT_BYTES = 128 * 1024

#: Stable machine codes, as sent in the `carewatch-error-code` header.
CODES = (
    "too_large",
    "unsupported_content_type",
    "invalid_utf8",
    "malformed_json",
    "not_an_object",
    "missing_attribute",
    "invalid_attribute",
    "unsupported_specversion",
    "unknown_type",
    "time_in_future",
    "missing_data_field",
    "invalid_data_field",
    "internal_error",
)

_ACCEPTED_CONTENT_TYPES = ("application/cloudevents+json", "application/json")
_SUBJECT = re.compile(r"[A-Za-z0-9_-]{3,64}")
_URI_REFERENCE = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]{1,512}")
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})"
)
_BCP47 = re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*")
_CHANNELS = ("journal", "chat", "checkin")
_ITEM_COUNTS = {"phq9": 9, "gad7": 7}
_CSSRS_ITEMS = ("q1", "q2", "q3", "q4", "q5", "q6")

#: metric -> (its only unit, lowest plausible value, highest plausible value)
WEARABLE_METRICS: Mapping[str, tuple[str, float, float]] = {
    "heart_rate": ("beats/min", 20, 300),
    "resting_heart_rate": ("beats/min", 20, 250),
    "hrv_rmssd": ("ms", 0, 1000),
    "sleep_duration": ("h", 0, 24),
    "step_count": ("steps", 0, 200_000),
}


@dataclass(frozen=True, slots=True)
class Event:
    """A valid event. `data` is the decoded `data` object, unchanged."""

    id: str
    source: str
    type: str
    subject: str
    time: datetime
    data: Mapping[str, Any]

    @property
    def stream(self) -> str:
        """The consent stream of this event: text, survey, wearable or consent."""
        return EVENT_TYPES[self.type]

    @property
    def timestamp(self) -> float:
        """Event time as Unix seconds."""
        return self.time.timestamp()


def parse(
    raw: bytes,
    *,
    content_type: str | None = None,
    now: float | None = None,
    max_future_skew: float = 3600.0,
) -> Event:
    """Decode and validate one record value; raise InvalidEvent naming the rule.

    `content_type` is the record's header, if any. `now` (Unix seconds)
    enables the check that the event time is not beyond `now +
    max_future_skew`; the replay leaves it out to stay deterministic.
    """
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidEvent(
            "too_large", f"record: {len(raw)} bytes is over the limit of {MAX_EVENT_BYTES} bytes"
        )
    if content_type is not None:
        media = content_type.split(";", 1)[0].strip().lower()
        if media not in _ACCEPTED_CONTENT_TYPES:
            raise InvalidEvent(
                "unsupported_content_type",
                "content-type header: expected application/cloudevents+json "
                "(structured mode); binary mode is not part of version 1",
                field="content-type",
            )
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent("invalid_utf8", f"record: not valid UTF-8 at byte {exc.start}") from None
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(
            "malformed_json", f"record: not valid JSON (line {exc.lineno}, column {exc.colno})"
        ) from None
    return validate(obj, now=now, max_future_skew=max_future_skew)


def validate(obj: Any, *, now: float | None = None, max_future_skew: float = 3600.0) -> Event:
    """Validate a decoded CloudEvent; raise InvalidEvent naming the rule."""
    if not isinstance(obj, dict):
        raise InvalidEvent("not_an_object", f"event: expected a JSON object, got {_kind(obj)}")
    specversion = _attribute(obj, "specversion")
    if specversion != "1.0":
        raise InvalidEvent(
            "unsupported_specversion",
            'specversion: expected "1.0"',
            field="specversion",
        )
    event_id = _attribute(obj, "id")
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= 128:
        raise _bad_attribute("id", "expected a string of 1-128 characters", event_id)
    source = _attribute(obj, "source")
    if not isinstance(source, str) or not _URI_REFERENCE.fullmatch(source):
        raise _bad_attribute("source", "expected a URI-reference such as app://journal/ios", source)
    event_type = _attribute(obj, "type")
    if not isinstance(event_type, str):
        raise _bad_attribute("type", "expected a string", event_type)
    if event_type not in EVENT_TYPES:
        raise InvalidEvent(
            "unknown_type",
            "type: not a carewatch event type; expected one of " + ", ".join(EVENT_TYPES),
            field="type",
        )
    subject = _attribute(obj, "subject")
    if not isinstance(subject, str) or not _SUBJECT.fullmatch(subject):
        raise _bad_attribute(
            "subject",
            "expected a pseudonymous id matching ^[A-Za-z0-9_-]{3,64}$ (never a name, e-mail, phone or MRN)",
            subject,
        )
    when = _time(_attribute(obj, "time"), "time")
    if now is not None and when.timestamp() > now + max_future_skew:
        raise InvalidEvent(
            "time_in_future",
            f"time: {when.timestamp() - now:.0f} s in the future, beyond the allowed "
            f"clock skew of {max_future_skew:.0f} s",
            field="time",
        )
    datacontenttype = obj.get("datacontenttype")
    if datacontenttype is not None and datacontenttype != "application/json":
        raise _bad_attribute("datacontenttype", 'expected "application/json" when present', datacontenttype)
    data = _attribute(obj, "data")
    if not isinstance(data, dict):
        raise _bad_attribute("data", "expected an object", data)
    _DATA_RULES[event_type](data)
    return Event(id=event_id, source=source, type=event_type, subject=subject, time=when, data=data)


# --- data, by type -------------------------------------------------------


def _text(data: dict) -> None:
    text = _field(data, "text")
    if not isinstance(text, str) or not 1 <= len(text) <= 10_000:
        length = f", got {len(text):,}" if isinstance(text, str) else f", got {_kind(text)}"
        raise _bad_field("text", "expected a string of 1-10,000 characters" + length)
    channel = _field(data, "channel")
    if channel not in _CHANNELS:
        raise _bad_field("channel", "expected one of journal, chat, checkin")
    lang = data.get("lang")
    if lang is not None and (not isinstance(lang, str) or not _BCP47.fullmatch(lang)):
        raise _bad_field("lang", "expected a BCP 47 language tag such as en or es-MX")


def _survey(data: dict) -> None:
    instrument = _field(data, "instrument")
    if not isinstance(instrument, str):
        instrument = None  # falls through to the "expected one of" message
    if instrument in _ITEM_COUNTS:
        count = _ITEM_COUNTS[instrument]
        items = _field(data, "items")
        if not isinstance(items, list) or len(items) != count:
            got = f"{len(items)} items" if isinstance(items, list) else _kind(items)
            raise _bad_field("items", f"expected a list of {count} integers 0-3 for {instrument}, got {got}")
        for index, item in enumerate(items):
            if not _is_int(item) or not 0 <= item <= 3:
                raise _bad_field(f"items[{index}]", f"expected an integer 0-3, got {_show(item)}")
    elif instrument == "cssrs_screener":
        items = _field(data, "items")
        if not isinstance(items, dict):
            raise _bad_field("items", f"expected an object with q1-q6 for cssrs_screener, got {_kind(items)}")
        for name in _CSSRS_ITEMS:
            if name not in items:
                raise InvalidEvent(
                    "missing_data_field", f"data.items.{name}: required for cssrs_screener", field=f"data.items.{name}"
                )
            if not isinstance(items[name], bool):
                raise _bad_field(f"items.{name}", f"expected true or false, got {_kind(items[name])}")
        recent = items.get("q6_within_3_months")
        if items["q6"] and recent is None:
            raise InvalidEvent(
                "missing_data_field",
                "data.items.q6_within_3_months: required when q6 is true",
                field="data.items.q6_within_3_months",
            )
        if recent is not None and not isinstance(recent, bool):
            raise _bad_field("items.q6_within_3_months", f"expected true or false, got {_kind(recent)}")
    elif instrument == "mood":
        score = _field(data, "score")
        if not _is_int(score) or not 0 <= score <= 10:
            raise _bad_field("score", f"expected an integer 0-10, got {_show(score)}")
    else:
        raise _bad_field("instrument", "expected one of phq9, gad7, cssrs_screener, mood")


def _wearable(data: dict) -> None:
    metric = _field(data, "metric")
    if not isinstance(metric, str) or metric not in WEARABLE_METRICS:
        raise _bad_field("metric", "expected one of " + ", ".join(WEARABLE_METRICS))
    unit, low, high = WEARABLE_METRICS[metric]
    if _field(data, "unit") != unit:
        raise _bad_field("unit", f'expected "{unit}" for {metric}')
    value = _field(data, "value")
    if not _is_number(value):
        raise _bad_field("value", f"expected a number, got {_kind(value)}")
    if not low <= value <= high:
        raise _bad_field("value", f"expected {metric} between {low:g} and {high:g} {unit}, got {value:g}")
    period = data.get("period")
    if period is not None:
        if not isinstance(period, dict):
            raise _bad_field("period", f"expected an object with start and end, got {_kind(period)}")
        start = _time(_field(period, "start", prefix="data.period"), "data.period.start", code="invalid_data_field")
        end = _time(_field(period, "end", prefix="data.period"), "data.period.end", code="invalid_data_field")
        if end < start:
            raise _bad_field("period.end", "expected a time at or after period.start")


def _consent(data: dict) -> None:
    if not isinstance(_field(data, "granted"), bool):
        raise _bad_field("granted", f"expected true or false, got {_kind(data['granted'])}")
    streams = _field(data, "streams")
    if (
        not isinstance(streams, list)
        or not streams
        or not all(isinstance(s, str) and s in STREAMS for s in streams)
    ):
        raise _bad_field("streams", "expected a non-empty list of text, survey, wearable")


_DATA_RULES = {TEXT: _text, SURVEY: _survey, WEARABLE: _wearable, CONSENT: _consent}


# --- helpers ----------------------------------------------------------------


def _attribute(obj: dict, name: str) -> Any:
    if name not in obj or obj[name] is None:
        raise InvalidEvent("missing_attribute", f"{name}: required attribute is missing", field=name)
    return obj[name]


def _field(data: dict, name: str, *, prefix: str = "data") -> Any:
    if name not in data or data[name] is None:
        path = f"{prefix}.{name}"
        raise InvalidEvent("missing_data_field", f"{path}: required field is missing", field=path)
    return data[name]


def _bad_attribute(name: str, rule: str, value: Any) -> InvalidEvent:
    got = "" if isinstance(value, str) else f", got {_kind(value)}"
    return InvalidEvent("invalid_attribute", f"{name}: {rule}{got}", field=name)


def _bad_field(path: str, rule: str) -> InvalidEvent:
    return InvalidEvent("invalid_data_field", f"data.{path}: {rule}", field=f"data.{path}")


def _time(value: Any, path: str, *, code: str = "invalid_attribute") -> datetime:
    if isinstance(value, str) and _RFC3339.fullmatch(value):
        try:
            when = datetime.fromisoformat(value.upper())
            when.timestamp()  # out of range once shifted to UTC, e.g. year 9999 at -23:59
            return when
        except (ValueError, OverflowError):
            pass
    raise InvalidEvent(code, f"{path}: expected an RFC 3339 time such as 2026-05-01T08:30:00Z", field=path)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def _kind(value: Any) -> str:
    """The JSON kind of a value, for messages that must not echo it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Sequence):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _show(value: Any) -> str:
    """Numbers are safe to repeat in a message; anything else is named by kind."""
    if _is_number(value):
        return f"{value:g}" if isinstance(value, float) else str(value)
    return _kind(value)
