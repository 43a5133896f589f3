"""Features: personal baselines, deviations, bands, and training/serving parity."""

from __future__ import annotations

import orjson
import pytest

from models.features import FEATURES, NEUTRAL, PersonFeatures, gad7_band, phq9_band, text_style
from models.simulator import CohortConfig, simulate

DAY = 86400.0
T0 = 20_000 * DAY


def wearable(metric, value):
    units = {"sleep_duration": "h", "resting_heart_rate": "beats/min", "hrv_rmssd": "ms", "step_count": "steps"}
    return {"metric": metric, "value": value, "unit": units[metric]}


def test_a_stable_person_has_no_deviation_and_a_shift_shows_in_z_scores():
    person = PersonFeatures()
    for day in range(40):
        person.observe("wearable", wearable("resting_heart_rate", 60 + (day % 3) - 1), T0 + day * DAY)
    z3 = FEATURES.index("rhr_z3")
    assert abs(person.vector(T0 + 39 * DAY)[z3]) < 1.5
    for day in range(40, 44):
        person.observe("wearable", wearable("resting_heart_rate", 68), T0 + day * DAY)
    assert person.vector(T0 + 43 * DAY)[z3] > 3


def test_the_same_value_means_different_things_for_different_people():
    low, high = PersonFeatures(), PersonFeatures()
    for day in range(30):
        low.observe("wearable", wearable("sleep_duration", 6.0 + 0.2 * (day % 2)), T0 + day * DAY)
        high.observe("wearable", wearable("sleep_duration", 8.0 + 0.2 * (day % 2)), T0 + day * DAY)
    for person in (low, high):
        person.observe("wearable", wearable("sleep_duration", 7.0), T0 + 30 * DAY)
    z = FEATURES.index("sleep_z3")
    assert low.vector(T0 + 30 * DAY)[z] > 0 > high.vector(T0 + 30 * DAY)[z]


def test_no_deviation_before_the_warm_up():
    person = PersonFeatures()
    for day in range(5):
        person.observe("wearable", wearable("step_count", 1000 * (day + 1)), T0 + day * DAY)
    assert person.vector(T0 + 4 * DAY)[FEATURES.index("steps_z7")] == 0.0


def test_a_late_value_for_a_recent_day_counts_and_a_repeat_does_not_double():
    a, b = PersonFeatures(), PersonFeatures()
    for day in range(20):
        for person in (a, b):
            person.observe("wearable", wearable("hrv_rmssd", 50), T0 + day * DAY)
    a.observe("wearable", wearable("hrv_rmssd", 30), T0 + 19 * DAY)
    b.observe("wearable", wearable("hrv_rmssd", 30), T0 + 19 * DAY)
    b.observe("wearable", wearable("hrv_rmssd", 30), T0 + 19 * DAY)
    assert a.vector(T0 + 19 * DAY) == b.vector(T0 + 19 * DAY)


def test_surveys_and_bands():
    person = PersonFeatures()
    person.observe("survey", {"instrument": "phq9", "items": [1] * 9}, T0)
    person.observe("survey", {"instrument": "phq9", "items": [2] * 9}, T0 + 14 * DAY)
    person.observe("survey", {"instrument": "gad7", "items": [3] * 7}, T0 + 14 * DAY)
    v = dict(zip(FEATURES, person.vector(T0 + 14 * DAY)))
    assert (v["phq9_total"], v["phq9_delta"], v["gad7_total"]) == (18, 9, 21)
    assert [phq9_band(t) for t in (0, 4, 5, 9, 10, 14, 15, 19, 20, 27)] == [
        "minimal", "minimal", "mild", "mild", "moderate", "moderate", "moderately severe", "moderately severe",
        "severe", "severe"]
    assert [gad7_band(t) for t in (4, 5, 10, 15, 21)] == ["minimal", "mild", "moderate", "severe", "severe"]


def test_text_style_counts_negative_absolutist_and_first_person_words():
    negative, absolutist, self_ = text_style("I always feel hopeless and I hate myself", "en")
    assert negative == pytest.approx(2 / 8) and absolutist == pytest.approx(1 / 8) and self_ == pytest.approx(3 / 8)
    assert text_style("Siempre me siento vacía", "es-MX")[1] == pytest.approx(1 / 4)
    assert text_style("", "en") == (0.0, 0.0, 0.0)


def test_state_holds_no_text():
    person = PersonFeatures()
    person.observe("text", {"text": "a very private sentence", "channel": "journal", "lang": "en"}, T0)
    assert b"private" not in orjson.dumps(person.to_dict())


def test_neutral_values_cover_every_feature():
    assert len(NEUTRAL) == len(FEATURES)


def test_training_and_serving_compute_identical_features():
    """Training keeps each person's state in memory; the worker stores it between events.

    The same events through both give the same vectors, bit for bit.
    """
    from datetime import datetime

    events = list(simulate(CohortConfig(people=25, days=60, seed=21)).events())
    in_memory: dict[str, PersonFeatures] = {}
    stored: dict[str, bytes] = {}
    for event in events:
        kind = event["type"].split(".")[2]
        if kind == "consent":
            continue
        when = datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()
        training = in_memory.setdefault(event["subject"], PersonFeatures())
        training.observe(kind, event["data"], when)
        raw = stored.get(event["subject"])
        serving = PersonFeatures.from_dict(orjson.loads(raw)) if raw else PersonFeatures()
        serving.observe(kind, event["data"], when)
        stored[event["subject"]] = orjson.dumps(serving.to_dict())
        assert serving.vector(when) == training.vector(when)
