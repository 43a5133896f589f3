"""A synthetic cohort of people, their apps and their wearables. ALL DATA IS SYNTHETIC.

Nothing here comes from real people, and nothing here is clinically
validated. The simulator writes contract-shaped events (CONTRACT §1), like
any upstream app, plus ground-truth labels, so models can be trained and
the decision core evaluated without touching anyone's data.

What it models, following the published direction of effects:

* each person has their own baselines and day-to-day noise (resting heart
  rate, HRV, sleep, steps, mood, PHQ-9, GAD-7), so one global threshold does
  poorly and personal baselines matter;
* a share of people go through a deterioration episode with a ground-truth
  onset day: shorter sleep, lower HRV, fewer steps, higher resting heart
  rate, lower mood, rising PHQ-9 and GAD-7, more negative, absolutist and
  first-person text; some of them reach a crisis day (explicit crisis
  language and/or a positive C-SSRS screener); afterwards they recover;
* everybody has bad days that are not episodes;
* real feeds: device-off days, skipped surveys, late and out-of-order
  events, duplicates; events come out in the order they would arrive.

Reproducible: the same configuration and seed give the same bytes.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from .language import compose

__all__ = ["Cohort", "CohortConfig", "Episode", "Person", "simulate"]

DEVICES = ("watch", "ring", "phone")
#: which wearable metrics each kind of device reports
DEVICE_METRICS = {
    "watch": ("resting_heart_rate", "hrv_rmssd", "sleep_duration", "step_count"),
    "ring": ("resting_heart_rate", "hrv_rmssd", "sleep_duration", "step_count"),
    "phone": ("sleep_duration", "step_count"),
}
STATEMENT = "Synthetic data from the carewatch simulator; not real people, not clinically validated."


@dataclass(frozen=True, kw_only=True)
class CohortConfig:
    people: int = 200
    days: int = 120
    seed: int = 1
    start: datetime = datetime(2026, 1, 5, tzinfo=timezone.utc)
    episode_share: float = 0.3
    crisis_share: float = 0.5
    spanish_share: float = 0.35
    intraday_heart_rate: bool = False
    device_off_rate: float = 0.02
    late_share: float = 0.03
    duplicate_share: float = 0.005


@dataclass(frozen=True, kw_only=True)
class Episode:
    onset_day: int
    peak_day: int
    crisis_day: int | None
    recovery_days: int
    peak: float


@dataclass(frozen=True, kw_only=True)
class Person:
    subject: str
    lang: str
    device: str
    consented: tuple[str, ...]
    rhr: float
    hrv: float
    sleep: float
    steps: float
    mood: float
    phq9: float
    gad7: float
    responsiveness: float
    writes: float
    survey_day: int
    episode: Episode | None

    def severity(self, day: float) -> float:
        """How deep in an episode the person is on a (fractional) day, 0 to 1."""
        e = self.episode
        if e is None or day < e.onset_day:
            return 0.0
        if day <= e.peak_day:
            return e.peak * (day - e.onset_day) / max(1, e.peak_day - e.onset_day)
        return e.peak * max(0.0, 1 - (day - e.peak_day) / e.recovery_days)

    def label(self, start: datetime) -> dict[str, Any]:
        def at(day: int | None) -> str | None:
            return None if day is None else _iso(start + timedelta(days=day))

        e = self.episode
        return {
            "subject": self.subject,
            "lang": self.lang,
            "device": self.device,
            "consented": list(self.consented),
            "episode": None if e is None else {
                "onset_day": e.onset_day, "onset": at(e.onset_day),
                "peak_day": e.peak_day, "crisis_day": e.crisis_day, "crisis": at(e.crisis_day),
                "end_day": e.peak_day + e.recovery_days, "peak": e.peak,
            },
        }


@dataclass
class Cohort:
    config: CohortConfig
    people: list[Person] = field(default_factory=list)

    def labels(self) -> dict[str, Any]:
        config = asdict(self.config) | {"start": _iso(self.config.start)}
        return {"synthetic": True, "statement": STATEMENT, "config": config,
                "people": [p.label(self.config.start) for p in self.people]}

    def events(self) -> Iterator[dict[str, Any]]:
        """Every event in arrival order (late ones late, repeats repeated)."""
        config = self.config
        rngs = [random.Random(f"{config.seed}:events:{p.subject}") for p in self.people]
        off = [_off_days(random.Random(f"{config.seed}:off:{p.subject}"), config) for p in self.people]
        arrivals: list[tuple[float, int, dict[str, Any]]] = []
        seq = 0
        start = config.start.timestamp()
        for p, rng in zip(self.people, rngs):
            e = _event(p, "consent", start - 3600, "app://carewatch-sim/enrol", 0, 0,
                       {"granted": True, "streams": list(p.consented)})
            heapq.heappush(arrivals, (start - 3600, seq, e))
            seq += 1
        for day in range(config.days):
            for p, rng, off_days in zip(self.people, rngs, off):
                for when, event in _day(p, day, rng, config, day in off_days):
                    arrive = when + _delay(event, rng, config)
                    heapq.heappush(arrivals, (arrive, seq, event))
                    seq += 1
                    if rng.random() < config.duplicate_share:
                        heapq.heappush(arrivals, (arrive + rng.uniform(1, 6 * 3600), seq, event))
                        seq += 1
            horizon = start + (day + 1) * 86400
            while arrivals and arrivals[0][0] < horizon:
                yield heapq.heappop(arrivals)[2]
        while arrivals:
            yield heapq.heappop(arrivals)[2]


def simulate(config: CohortConfig) -> Cohort:
    rng = random.Random(f"{config.seed}:people")
    cohort = Cohort(config=config)
    for index in range(config.people):
        cohort.people.append(_person(index, rng, config))
    return cohort


def _person(index: int, rng: random.Random, config: CohortConfig) -> Person:
    subject = f"p-{config.seed:x}{index:05d}{rng.getrandbits(24):06x}"
    episode = None
    if rng.random() < config.episode_share and config.days >= 50:
        onset = rng.randrange(21, config.days - 25)
        ramp = rng.randrange(10, 25)
        crisis = onset + ramp + rng.randrange(-2, 3) if rng.random() < config.crisis_share else None
        episode = Episode(onset_day=onset, peak_day=onset + ramp, crisis_day=crisis,
                          recovery_days=rng.randrange(14, 40), peak=rng.uniform(0.7, 1.0) if crisis else rng.uniform(0.45, 0.9))
    consented: tuple[str, ...] = ("text", "survey", "wearable")
    if rng.random() < 0.05:
        consented = ("survey", "wearable")
    return Person(
        subject=subject,
        lang="es" if rng.random() < config.spanish_share else "en",
        device=rng.choices(DEVICES, (0.5, 0.2, 0.3))[0],
        consented=consented,
        rhr=min(90, max(45, rng.gauss(62, 7))),
        hrv=math.exp(rng.gauss(math.log(45), 0.35)),
        sleep=min(9, max(5.2, rng.gauss(7.1, 0.6))),
        steps=math.exp(rng.gauss(math.log(7000), 0.45)),
        mood=min(9, max(3.5, rng.gauss(6.6, 1.1))),
        phq9=max(0, rng.gauss(3.5, 2.2)),
        gad7=max(0, rng.gauss(3.0, 2.0)),
        responsiveness=rng.uniform(0.5, 1.3),
        writes=rng.uniform(0.15, 0.85),
        survey_day=rng.randrange(14),
        episode=episode,
    )


def _day(p: Person, day: int, rng: random.Random, config: CohortConfig,
         device_off: bool) -> Iterator[tuple[float, dict[str, Any]]]:
    """The events of one person's day, with their event times."""
    base = config.start.timestamp() + day * 86400
    bad_day = 0.35 * rng.random() if rng.random() < 0.06 else 0.0
    s = min(1.0, p.severity(day) + bad_day)
    r = p.responsiveness
    crisis = p.episode is not None and p.episode.crisis_day == day
    weekend = (config.start + timedelta(days=day)).weekday() >= 5
    n = 0

    def ev(kind: str, when: float, source: str, data: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        nonlocal n
        n += 1
        return when, _event(p, kind, when, source, day, n, data)

    if not device_off:
        device = f"device://carewatch-sim/{p.device}"
        metrics = DEVICE_METRICS[p.device]
        wake = base + 7 * 3600 + rng.gauss(0, 1800)
        if "sleep_duration" in metrics:
            noise = 0.7 if p.device != "phone" else 1.1
            sleep = max(0.5, min(13, rng.gauss(p.sleep - 1.6 * s * r, noise + 0.6 * s)))
            yield ev("wearable", wake, device, {"metric": "sleep_duration", "value": round(sleep, 2), "unit": "h",
                                                "period": {"start": _iso_ts(wake - sleep * 3600), "end": _iso_ts(wake)}})
        if "resting_heart_rate" in metrics:
            rhr = rng.gauss(p.rhr + 6.5 * s * r, 2.4)
            yield ev("wearable", wake + 300, device, {"metric": "resting_heart_rate", "value": round(rhr, 1),
                                                      "unit": "beats/min"})
        if "hrv_rmssd" in metrics:
            hrv = max(5, p.hrv * (1 - 0.3 * s * r) * math.exp(rng.gauss(0, 0.13)))
            yield ev("wearable", wake + 310, device, {"metric": "hrv_rmssd", "value": round(hrv, 1), "unit": "ms"})
        if "step_count" in metrics:
            steps = p.steps * (1.15 if weekend else 1.0) * (1 - 0.5 * s * r) * math.exp(rng.gauss(0, 0.3))
            yield ev("wearable", base + 23.5 * 3600, device, {"metric": "step_count", "value": int(steps),
                                                               "unit": "steps"})
        if config.intraday_heart_rate and p.device != "phone":
            for hour in range(24):
                awake = 7 <= hour <= 22
                hr = rng.gauss(p.rhr + 6.5 * s * r + (18 if awake else 2), 6)
                yield ev("wearable", base + hour * 3600 + 1800, device, {"metric": "heart_rate", "value": round(hr),
                                                                         "unit": "beats/min"})
    surveys = "app://carewatch-sim/checkin"
    if rng.random() < 0.75:
        mood = round(min(10, max(0, rng.gauss(p.mood - 3.8 * s * r, 1.1))))
        yield ev("survey", base + 20 * 3600 + rng.gauss(0, 2400), surveys, {"instrument": "mood", "score": mood})
    if day % 14 == p.survey_day and rng.random() < 0.85:
        yield ev("survey", base + 10 * 3600, surveys, {"instrument": "phq9", "items": _phq9(p, s, r, rng)})
    if day % 14 == (p.survey_day + 7) % 14 and rng.random() < 0.8:
        yield ev("survey", base + 10 * 3600, surveys, {"instrument": "gad7", "items": _items(7, p.gad7 + 11 * s * r, rng)})
    if "text" in p.consented:
        if rng.random() < p.writes or crisis:
            lang = p.lang
            text = compose(lang, s, rng, crisis=crisis and rng.random() < 0.75)
            yield ev("text", base + 21 * 3600 + rng.gauss(0, 3600), "app://carewatch-sim/journal",
                     {"text": text, "channel": "journal", "lang": lang})
        if rng.random() < 0.3 * p.writes:
            yield ev("text", base + rng.uniform(9, 23) * 3600, "app://carewatch-sim/companion",
                     {"text": compose(p.lang, s, rng), "channel": "chat", "lang": p.lang})
    if crisis and rng.random() < 0.6:
        items = {"q1": True, "q2": True, "q3": rng.random() < 0.7, "q4": rng.random() < 0.6, "q5": rng.random() < 0.5,
                 "q6": rng.random() < 0.3}
        if not (items["q4"] or items["q5"] or items["q6"]):
            items["q4"] = True
        if items["q6"]:
            items["q6_within_3_months"] = True
        yield ev("survey", base + 15 * 3600, surveys, {"instrument": "cssrs_screener", "items": items})


def _off_days(rng: random.Random, config: CohortConfig) -> set[int]:
    """Runs of one to five days without the wearable (charging, forgotten, broken)."""
    days: set[int] = set()
    for day in range(config.days):
        if rng.random() < config.device_off_rate:
            days.update(range(day, day + rng.randint(1, 5)))
    return days


def _phq9(p: Person, s: float, r: float, rng: random.Random) -> list[int]:
    items = _items(9, p.phq9 + 15 * s * r, rng)
    items[8] = 0
    if s > 0.55 and rng.random() < 0.35 + 0.5 * s:
        items[8] = rng.choice((1, 1, 2, 3))
    return items


def _items(count: int, expected_total: float, rng: random.Random) -> list[int]:
    per_item = min(3.0, max(0.0, expected_total / count))
    return [min(3, max(0, round(rng.gauss(per_item, 0.6)))) for _ in range(count)]


def _delay(event: dict[str, Any], rng: random.Random, config: CohortConfig) -> float:
    if rng.random() < config.late_share:
        return rng.uniform(3600, 72 * 3600)  # a phone offline, a wearable synced days later
    if event["type"].endswith("wearable.v1"):
        return rng.uniform(30, 900)
    return rng.uniform(0.5, 30)


def _event(p: Person, kind: str, when: float, source: str, day: int, n: int, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"{p.subject}-{day:03d}-{n:02d}",
        "source": source,
        "type": f"org.carewatch.{kind}.v1",
        "subject": p.subject,
        "time": _iso_ts(when),
        "data": data,
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_ts(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
