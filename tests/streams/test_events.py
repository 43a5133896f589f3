"""Every rule of CONTRACT §1, one assertion each, plus properties over arbitrary input."""

from __future__ import annotations

import copy
import string
from datetime import datetime, timezone

import orjson
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from streams.events import CODES, MAX_EVENT_BYTES, parse, validate
from streams.exceptions import InvalidEvent
from tests.factory import event

NOW = datetime(2026, 11, 2, tzinfo=timezone.utc).timestamp()


def rejects(obj, code: str, message: str | None = None, **kwargs) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as info:
        if isinstance(obj, bytes):
            parse(obj, **kwargs)
        else:
            validate(obj, **kwargs)
    assert info.value.code == code, str(info.value)
    assert info.value.code in CODES
    if message is not None:
        assert str(info.value) == message
    return info.value


def with_data(kind: str, **data):
    return event(kind, **data)


# --- valid events ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["text", "survey", "wearable", "consent"])
def test_a_valid_event_of_every_type_passes(kind):
    valid = validate(event(kind, subject="p-7f3a9c"))
    assert valid.subject == "p-7f3a9c"
    assert valid.stream == kind
    assert valid.time == datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "data",
    [
        {"instrument": "gad7", "items": [3, 3, 3, 3, 3, 3, 3]},
        {"instrument": "mood", "score": 0},
        {"instrument": "mood", "score": 10},
        {"instrument": "cssrs_screener", "items": {"q1": True, "q2": False, "q3": False, "q4": False, "q5": False, "q6": False}},
        {"instrument": "cssrs_screener",
         "items": {"q1": True, "q2": True, "q3": True, "q4": True, "q5": True, "q6": True, "q6_within_3_months": False}},
    ],
)
def test_every_instrument_shape_passes(data):
    assert validate(event("survey", **data)).data == data


def test_wearable_with_period_and_every_metric_unit_pair():
    for metric, unit, value in [("heart_rate", "beats/min", 72), ("resting_heart_rate", "beats/min", 58.5),
                                ("hrv_rmssd", "ms", 41.2), ("sleep_duration", "h", 7.25), ("step_count", "steps", 8012)]:
        e = event("wearable", metric=metric, unit=unit, value=value,
                  period={"start": "2026-10-31T23:00:00Z", "end": "2026-11-01T06:15:00+01:00"})
        assert validate(e).data["metric"] == metric


def test_rfc3339_offsets_fractions_and_lowercase_separators_are_read():
    for text in ["2026-11-01T09:00:00.123456789Z", "2026-11-01t10:00:00+01:00", "2026-11-01T09:00:00z"]:
        e = event("text")
        e["time"] = text
        assert validate(e).timestamp == pytest.approx(datetime(2026, 11, 1, 9, tzinfo=timezone.utc).timestamp(), abs=1)


def test_a_record_without_content_type_or_with_the_structured_one_is_read():
    raw = orjson.dumps(event("text"))
    assert parse(raw).type == "org.carewatch.text.v1"
    assert parse(raw, content_type="application/cloudevents+json; charset=utf-8").type == "org.carewatch.text.v1"


def test_extension_attributes_are_allowed():
    e = event("survey", instrument="mood", score=4)
    e["traceparent"] = "00-abc-def-01"
    assert validate(e).data["score"] == 4


# --- the envelope --------------------------------------------------------------------


def test_binary_mode_is_refused_with_a_reason():
    rejects(orjson.dumps(event("text")), "unsupported_content_type",
            "content-type header: expected application/cloudevents+json (structured mode); "
            "binary mode is not part of version 1", content_type="text/plain")


def test_oversize_record():
    rejects(b" " * (MAX_EVENT_BYTES + 1), "too_large",
            f"record: {MAX_EVENT_BYTES + 1} bytes is over the limit of {MAX_EVENT_BYTES} bytes")


def test_invalid_utf8():
    rejects(b'{"a": "\xc3\x28"}', "invalid_utf8", "record: not valid UTF-8 at byte 7")


def test_malformed_json_names_line_and_column():
    rejects(b'{"a": 1,\n  oops}', "malformed_json", "record: not valid JSON (line 2, column 3)")


def test_not_an_object():
    rejects(b"[1, 2]", "not_an_object", "event: expected a JSON object, got an array")


@pytest.mark.parametrize("attribute", ["specversion", "id", "source", "type", "subject", "time", "data"])
def test_every_required_attribute(attribute):
    e = event("text")
    del e[attribute]
    rejects(e, "missing_attribute", f"{attribute}: required attribute is missing")


def test_specversion_must_be_1_0():
    e = event("text")
    e["specversion"] = "1.1"
    rejects(e, "unsupported_specversion", 'specversion: expected "1.0"')


@pytest.mark.parametrize("value", ["", "x" * 129, 42])
def test_id_is_1_to_128_characters(value):
    e = event("text")
    e["id"] = value
    rejects(e, "invalid_attribute")
    e["id"] = "x" * 128
    assert validate(e).id == "x" * 128


@pytest.mark.parametrize("value", ["has space", "", "x" * 513, "tab\there"])
def test_source_is_a_uri_reference(value):
    e = event("text")
    e["source"] = value
    rejects(e, "invalid_attribute")


def test_unknown_type_lists_the_known_ones():
    e = event("text")
    e["type"] = "org.carewatch.text.v2"
    error = rejects(e, "unknown_type")
    assert "org.carewatch.consent.v1" in str(error)


@pytest.mark.parametrize("value", ["ab", "x" * 65, "jane.doe@example.org", "+44 7700 900123", "p 1"])
def test_subject_must_be_pseudonymous_and_is_never_echoed(value):
    e = event("text")
    e["subject"] = value
    error = rejects(
        e, "invalid_attribute",
        "subject: expected a pseudonymous id matching ^[A-Za-z0-9_-]{3,64}$ (never a name, e-mail, phone or MRN)",
    )
    assert value not in str(error)


@pytest.mark.parametrize("value", ["2026-11-01", "2026-11-01T09:00:00", "yesterday", "2026-13-01T00:00:00Z",
                                   "2026-11-01T25:00:00Z", "2026-02-30T00:00:00Z", 1730000000])
def test_time_must_be_rfc3339_with_an_offset(value):
    e = event("text")
    e["time"] = value
    rejects(e, "invalid_attribute", "time: expected an RFC 3339 time such as 2026-05-01T08:30:00Z")


def test_far_future_time_is_refused_when_a_clock_is_given():
    e = event("text")
    e["time"] = "2026-11-02T02:00:01Z"
    rejects(e, "time_in_future", "time: 7201 s in the future, beyond the allowed clock skew of 3600 s", now=NOW)
    e["time"] = "2026-11-02T00:59:59Z"
    assert validate(e, now=NOW).id == e["id"]
    assert validate({**e, "time": "2099-01-01T00:00:00Z"}).id == e["id"]  # no clock: the replay's way


def test_datacontenttype_if_present_is_json():
    e = event("text")
    e["datacontenttype"] = "text/plain"
    rejects(e, "invalid_attribute")


def test_data_must_be_an_object():
    e = event("text")
    e["data"] = "hello"
    rejects(e, "invalid_attribute", "data: expected an object")
    e["data"] = [1]
    rejects(e, "invalid_attribute", "data: expected an object, got an array")


# --- data, by type -------------------------------------------------------------------


def test_text_length_is_counted_and_the_text_never_echoed():
    error = rejects(event("text", text="secret " * 1500), "invalid_data_field",
                    "data.text: expected a string of 1-10,000 characters, got 10,500")
    assert "secret" not in str(error)
    rejects(event("text", text=""), "invalid_data_field")
    assert validate(event("text", text="é" * 10_000)).data["text"]


def test_text_channel_and_lang():
    rejects(event("text", channel="sms"), "invalid_data_field", "data.channel: expected one of journal, chat, checkin")
    rejects(event("text", lang="english!"), "invalid_data_field",
            "data.lang: expected a BCP 47 language tag such as en or es-MX")
    assert validate(event("text", lang="es-MX")).data["lang"] == "es-MX"
    text = event("text")
    del text["data"]["lang"]
    assert validate(text)


def test_phq9_item_out_of_range_names_the_item():
    rejects(event("survey", instrument="phq9", items=[0, 0, 0, 0, 0, 0, 0, 0, 4]), "invalid_data_field",
            "data.items[8]: expected an integer 0-3, got 4")


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([0] * 8, "data.items: expected a list of 9 integers 0-3 for phq9, got 8 items"),
        ([0] * 8 + [True], "data.items[8]: expected an integer 0-3, got a boolean"),
        ([0] * 8 + [1.5], "data.items[8]: expected an integer 0-3, got 1.5"),
        ([0] * 8 + ["1"], "data.items[8]: expected an integer 0-3, got a string"),
        ({"q1": 1}, "data.items: expected a list of 9 integers 0-3 for phq9, got an object"),
    ],
)
def test_phq9_items(items, message):
    rejects(event("survey", instrument="phq9", items=items), "invalid_data_field", message)


def test_gad7_has_seven_items():
    rejects(event("survey", instrument="gad7", items=[0] * 9), "invalid_data_field",
            "data.items: expected a list of 7 integers 0-3 for gad7, got 9 items")


def test_cssrs_requires_q1_to_q6_as_booleans():
    items = {f"q{i}": False for i in range(1, 7)}
    del items["q3"]
    rejects(event("survey", instrument="cssrs_screener", items=items), "missing_data_field",
            "data.items.q3: required for cssrs_screener")
    items = {f"q{i}": False for i in range(1, 7)} | {"q5": "yes"}
    rejects(event("survey", instrument="cssrs_screener", items=items), "invalid_data_field",
            "data.items.q5: expected true or false, got a string")


def test_cssrs_q6_true_requires_the_recency():
    items = {f"q{i}": i == 6 for i in range(1, 7)}
    rejects(event("survey", instrument="cssrs_screener", items=items), "missing_data_field",
            "data.items.q6_within_3_months: required when q6 is true")
    rejects(event("survey", instrument="cssrs_screener", items=items | {"q6_within_3_months": 1}),
            "invalid_data_field", "data.items.q6_within_3_months: expected true or false, got a number")


def test_mood_takes_a_score_instead_of_items():
    rejects(event("survey", instrument="mood", score=11), "invalid_data_field", "data.score: expected an integer 0-10, got 11")
    body = event("survey", instrument="mood")
    rejects(body, "missing_data_field", "data.score: required field is missing")


def test_unknown_instrument():
    rejects(event("survey", instrument="phq2"), "invalid_data_field",
            "data.instrument: expected one of phq9, gad7, cssrs_screener, mood")


def test_wearable_metric_unit_value_and_period():
    rejects(event("wearable", metric="spo2"), "invalid_data_field",
            "data.metric: expected one of heart_rate, resting_heart_rate, hrv_rmssd, sleep_duration, step_count")
    rejects(event("wearable", metric="heart_rate", unit="bpm", value=70), "invalid_data_field",
            'data.unit: expected "beats/min" for heart_rate')
    rejects(event("wearable", metric="heart_rate", unit="beats/min", value="70"), "invalid_data_field",
            "data.value: expected a number, got a string")
    rejects(event("wearable", metric="sleep_duration", unit="h", value=30), "invalid_data_field",
            "data.value: expected sleep_duration between 0 and 24 h, got 30")
    rejects(event("wearable", period={"start": "2026-11-01T08:00:00Z", "end": "2026-11-01T07:00:00Z"}),
            "invalid_data_field", "data.period.end: expected a time at or after period.start")
    rejects(event("wearable", period={"start": "2026-11-01T08:00:00Z"}), "missing_data_field",
            "data.period.end: required field is missing")
    rejects(event("wearable", period={"start": "soon", "end": "2026-11-01T07:00:00Z"}), "invalid_data_field",
            "data.period.start: expected an RFC 3339 time such as 2026-05-01T08:30:00Z")


def test_consent_granted_and_streams():
    rejects(event("consent", granted="yes"), "invalid_data_field", "data.granted: expected true or false, got a string")
    for streams in ([], ["text", "location"], "text"):
        rejects(event("consent", streams=streams), "invalid_data_field",
                "data.streams: expected a non-empty list of text, survey, wearable")


# --- properties ---------------------------------------------------------------------

_VALID = orjson.dumps(event("survey", instrument="phq9", items=[1] * 9))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_always_get_a_verdict(raw):
    try:
        parse(raw)
    except InvalidEvent as error:
        assert error.code in CODES
        assert str(error)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def _mutations():
    base = orjson.loads(_VALID)
    paths = [("specversion",), ("id",), ("source",), ("type",), ("subject",), ("time",), ("data",),
             ("data", "instrument"), ("data", "items"), ("data", "score")]
    return st.tuples(st.sampled_from(paths), _json, st.booleans()).map(lambda t: _mutate(base, *t))


def _mutate(base, path, value, delete):
    e = copy.deepcopy(base)
    node = e
    for key in path[:-1]:
        node = node[key]
    if delete:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return e


@settings(max_examples=600, deadline=None)
@given(_mutations())
def test_near_valid_events_always_get_a_verdict(candidate):
    try:
        valid = validate(candidate)
    except InvalidEvent as error:
        assert error.code in CODES
        assert str(error).split(":")[0]  # names a field or the record
    else:
        assert valid.subject == candidate["subject"]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.printable + "éñ€😀", min_size=8, max_size=60))
def test_error_messages_never_repeat_a_string_from_the_event(secret):
    for attribute in ("subject", "source", "id", "time"):
        e = event("text")
        e[attribute] = secret
        try:
            validate(e)
        except InvalidEvent as error:
            neutral = {**e, attribute: "\x00" * 200}
            with pytest.raises(InvalidEvent) as info:
                validate(neutral)
            assume(secret not in str(info.value))  # the rule's own words, e.g. "[A-Za-z0"
            assert secret not in str(error)
