"""The synthetic cohort: reproducible, contract-valid, realistic in the ways that matter."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict

import orjson
import pytest

from models.features import day_of
from models.simulator import STATEMENT, CohortConfig, simulate
from streams.events import validate


@pytest.fixture(scope="module")
def cohort():
    c = simulate(CohortConfig(people=120, days=90, seed=5))
    return c, list(c.events())


def test_the_same_seed_gives_the_same_bytes_and_another_seed_does_not():
    one = [orjson.dumps(e) for e in simulate(CohortConfig(people=10, days=30, seed=2)).events()]
    two = [orjson.dumps(e) for e in simulate(CohortConfig(people=10, days=30, seed=2)).events()]
    other = [orjson.dumps(e) for e in simulate(CohortConfig(people=10, days=30, seed=3)).events()]
    assert one == two
    assert one != other


def test_every_event_meets_the_contract(cohort):
    _, events = cohort
    for event in events:
        validate(event)
    assert {e["type"] for e in events} == {"org.carewatch.consent.v1", "org.carewatch.text.v1",
                                          "org.carewatch.survey.v1", "org.carewatch.wearable.v1"}
    instruments = Counter(e["data"]["instrument"] for e in events if e["type"].endswith("survey.v1"))
    assert set(instruments) == {"mood", "phq9", "gad7", "cssrs_screener"}


def test_consent_comes_first_for_each_person(cohort):
    c, events = cohort
    first = {}
    for e in events:
        first.setdefault(e["subject"], e["type"])
    assert set(first.values()) == {"org.carewatch.consent.v1"}
    assert len(first) == len(c.people)


def test_labels_say_they_are_synthetic_and_give_ground_truth(cohort):
    c, _ = cohort
    labels = c.labels()
    assert labels["synthetic"] is True and labels["statement"] == STATEMENT
    episodes = [p["episode"] for p in labels["people"] if p["episode"]]
    assert 0.15 < len(episodes) / len(c.people) < 0.45
    assert any(e["crisis_day"] is not None for e in episodes)
    assert all(e["onset_day"] < e["peak_day"] for e in episodes)


def test_texts_vary_and_come_in_two_languages_with_idioms(cohort):
    _, events = cohort
    texts = [e["data"] for e in events if e["type"].endswith("text.v1")]
    distinct = {t["text"] for t in texts}
    assert len(distinct) / len(texts) > 0.7
    assert {t["lang"] for t in texts} == {"en", "es"}
    joined = " ".join(distinct)
    assert "dying to" in joined or "killing me" in joined
    assert "me muero de" in joined.lower() or "me mata" in joined.lower()


def test_real_feed_mess_late_out_of_order_and_duplicate(cohort):
    _, events = cohort
    keys = Counter((e["source"], e["id"]) for e in events)
    assert sum(n - 1 for n in keys.values()) > 0
    late = sum(1 for a, b in zip(events, events[1:]) if b["time"] < a["time"][:10])  # a day or more behind
    assert late > 0


def test_episodes_move_signals_the_published_way(cohort):
    c, events = cohort
    start_day = day_of(c.config.start.timestamp())
    people = {p.subject: p for p in c.people}
    values: dict[tuple[str, str, bool], list[float]] = defaultdict(list)
    for e in events:
        if e["type"].endswith("wearable.v1"):
            p = people[e["subject"]]
            from datetime import datetime
            day = day_of(datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp()) - start_day
            values[(e["subject"], e["data"]["metric"], p.severity(day) > 0.6)].append(e["data"]["value"])
    direction = {"sleep_duration": -1, "hrv_rmssd": -1, "step_count": -1, "resting_heart_rate": +1}
    for metric, sign in direction.items():
        shifts = [statistics.mean(values[(s, metric, True)]) - statistics.mean(values[(s, metric, False)])
                  for s in people if values.get((s, metric, True)) and values.get((s, metric, False))]
        assert shifts, metric
        assert sum(1 for x in shifts if x * sign > 0) / len(shifts) > 0.75, metric


def test_people_differ_enough_that_baselines_matter():
    c = simulate(CohortConfig(people=300, days=60, seed=9))
    rhr = [p.rhr for p in c.people]
    # the spread between people is larger than an episode's typical shift (about 6 beats/min)
    assert statistics.pstdev(rhr) > 5


def test_intraday_heart_rate_is_off_by_default_and_multiplies_volume():
    plain = list(simulate(CohortConfig(people=5, days=10, seed=4)).events())
    intraday = list(simulate(CohortConfig(people=5, days=10, seed=4, intraday_heart_rate=True)).events())
    assert not any(e["type"].endswith("wearable.v1") and e["data"]["metric"] == "heart_rate" for e in plain)
    assert len(intraday) > 3 * len(plain)
