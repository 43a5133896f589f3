"""Features, shared by training and serving: pure functions over plain values.

A person's `PersonFeatures` takes what their events say (a metric and a
value, a survey's items, a text) and answers with one feature vector. The
training code and the stream worker call the same `observe` and `vector`,
and the state serialises to plain lists and numbers, so both compute the
same numbers from the same events (tests/models/test_features.py).

Baselines are personal: an exponentially weighted mean and variance with a
28-day span, fed by days as they leave the recent 7-day window, so a slow
deterioration is measured against the person as they were before it. The
deviations are 3- and 7-day z-scores against that baseline. Steps and HRV
are log-normal and are compared in log space. The state keeps no text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "FEATURES",
    "NEUTRAL",
    "PersonFeatures",
    "day_of",
    "gad7_band",
    "phq9_band",
    "text_style",
]

SPAN_DAYS = 28
ALPHA = 2 / (SPAN_DAYS + 1)
RECENT_DAYS = 7
WARMUP_DAYS = 7
TEXT_ALPHA = 2 / (10 + 1)

#: metric -> (feature prefix, log scale?, floor of the standard deviation)
SERIES: Mapping[str, tuple[str, bool, float]] = {
    "sleep_duration": ("sleep", False, 0.35),
    "resting_heart_rate": ("rhr", False, 1.5),
    "hrv_rmssd": ("hrv", True, 0.08),
    "step_count": ("steps", True, 0.12),
    "mood": ("mood", False, 0.6),
}

FEATURES: tuple[str, ...] = (
    *(f"{prefix}_z{n}" for prefix, _, _ in SERIES.values() for n in (3, 7)),
    "phq9_total",
    "phq9_delta",
    "gad7_total",
    "style_negative",
    "style_absolutist",
    "style_self",
    "wearable_days_7",
)


#: a value per feature that says "nothing unusual": what explanations compare against
NEUTRAL: tuple[float, ...] = (
    *(0.0 for _ in SERIES for _ in (3, 7)),
    4.0,  # phq9_total: minimal
    0.0,  # phq9_delta
    3.0,  # gad7_total: minimal
    0.01, 0.02, 0.08,  # text style shares typical of everyday writing
    7.0,  # a wearable reported every day
)


def day_of(timestamp: float) -> int:
    """The UTC day number of an event time."""
    return int(timestamp // 86400)


def phq9_band(total: int) -> str:
    return ("minimal", "mild", "moderate", "moderately severe", "severe")[
        0 if total <= 4 else 1 if total <= 9 else 2 if total <= 14 else 3 if total <= 19 else 4
    ]


def gad7_band(total: int) -> str:
    return ("minimal", "mild", "moderate", "severe")[0 if total <= 4 else 1 if total <= 9 else 2 if total <= 14 else 3]


# --- text style -----------------------------------------------------------------

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_LEXICON = {
    "negative": {
        "en": {"sad", "tired", "anxious", "low", "hopeless", "worthless", "empty", "numb", "trapped", "useless",
               "broken", "hate", "alone", "lonely", "cry", "cried", "pain", "hurt", "afraid", "scared", "awful",
               "terrible", "miserable", "exhausted", "drained", "irritable", "burden", "fault", "mess", "point",
               "foggy", "restless"},
        "es": {"triste", "cansado", "cansada", "ansioso", "ansiosa", "bajón", "inútil", "vacía", "vacío", "entumecido",
               "atrapada", "atrapado", "roto", "rota", "odio", "sola", "solo", "llorar", "lloré", "dolor", "miedo",
               "horrible", "agotada", "agotado", "irritable", "carga", "culpa", "estropeo", "sentido", "nublada",
               "inquieta", "harta", "harto", "apagada", "ganas"},
    },
    "absolutist": {
        "en": {"always", "never", "completely", "totally", "nothing", "everything", "nobody", "constantly", "entire",
               "all", "every", "anything", "absolutely"},
        "es": {"siempre", "nunca", "completamente", "totalmente", "nada", "todo", "todos", "nadie", "constantemente",
               "entero", "absolutamente", "jamás"},
    },
    "self": {
        "en": {"i", "me", "my", "mine", "myself", "im", "i'm", "i've", "i'd"},
        "es": {"yo", "me", "mi", "mis", "mío", "mía", "conmigo"},
    },
}


def text_style(text: str, lang: str | None) -> tuple[float, float, float]:
    """Shares of negative-emotion, absolutist and first-person-singular words."""
    words = _WORD.findall(text.lower())
    if not words:
        return 0.0, 0.0, 0.0
    language = lang.split("-")[0].lower() if lang else "en"
    if language not in ("en", "es"):
        language = "en"
    n = len(words)
    return tuple(sum(1 for w in words if w in _LEXICON[kind][language]) / n
                 for kind in ("negative", "absolutist", "self"))  # type: ignore[return-value]


# --- the person -----------------------------------------------------------------


class _Series:
    """One daily series: recent days raw, older days folded into the baseline."""

    __slots__ = ("mean", "var", "n", "recent", "log", "floor")

    def __init__(self, log: bool, floor: float, mean: float = 0.0, var: float = 0.0, n: int = 0,
                 recent: dict[int, float] | None = None) -> None:
        self.log, self.floor = log, floor
        self.mean, self.var, self.n = mean, var, n
        self.recent: dict[int, float] = recent if recent is not None else {}

    def observe(self, day: int, value: float) -> None:
        x = math.log(value + 1.0) if self.log else float(value)
        if self.recent and day < max(self.recent) - RECENT_DAYS + 1:
            self._fold(x)  # too late for the recent window: it is history now
            return
        self.recent[day] = x  # a repeat or a correction of the same day replaces it
        newest = max(self.recent)
        for old in sorted(d for d in self.recent if d <= newest - RECENT_DAYS):
            self._fold(self.recent.pop(old))

    def _fold(self, x: float) -> None:
        if self.n == 0:
            self.mean, self.var = x, 0.0
        else:
            delta = x - self.mean
            self.mean += ALPHA * delta
            self.var = (1 - ALPHA) * (self.var + ALPHA * delta * delta)
        self.n += 1

    def z(self, day: int, window: int) -> float:
        if self.n < WARMUP_DAYS:
            return 0.0
        values = [v for d, v in self.recent.items() if day - window < d <= day]
        if not values:
            return 0.0
        sd = max(math.sqrt(self.var), self.floor)
        return (sum(values) / len(values) - self.mean) / sd

    def to_list(self) -> list[Any]:
        return [self.mean, self.var, self.n, list(self.recent.items())]  # (day, value) pairs: JSON arrays


class PersonFeatures:
    """Everything the features need about one person; bounded; no text."""

    __slots__ = ("series", "phq9", "phq9_previous", "gad7", "style", "wearable_days")

    def __init__(self) -> None:
        self.series = {metric: _Series(log, floor) for metric, (_, log, floor) in SERIES.items()}
        self.phq9: int | None = None
        self.phq9_previous: int | None = None
        self.gad7: int | None = None
        self.style = [0.0, 0.0, 0.0]
        self.wearable_days: list[int] = []

    def observe(self, kind: str, data: Mapping[str, Any], timestamp: float) -> None:
        """Take one event's `data` (contract shape, CONTRACT §1) at its event time."""
        day = day_of(timestamp)
        if kind == "wearable":
            metric = data["metric"]
            if metric in self.series:
                self.series[metric].observe(day, data["value"])
            if day not in self.wearable_days:
                self.wearable_days = sorted([*self.wearable_days, day])[-RECENT_DAYS:]
        elif kind == "survey":
            instrument = data["instrument"]
            if instrument == "mood":
                self.series["mood"].observe(day, data["score"])
            elif instrument == "phq9":
                self.phq9_previous, self.phq9 = self.phq9, sum(data["items"])
            elif instrument == "gad7":
                self.gad7 = sum(data["items"])
        elif kind == "text":
            shares = text_style(data["text"], data.get("lang"))
            self.style = [(1 - TEXT_ALPHA) * old + TEXT_ALPHA * new for old, new in zip(self.style, shares)]

    def vector(self, timestamp: float) -> list[float]:
        """The feature vector as of an event time, in the order of FEATURES."""
        day = day_of(timestamp)
        values: list[float] = []
        for metric in SERIES:
            series = self.series[metric]
            values.append(series.z(day, 3))
            values.append(series.z(day, 7))
        phq9 = float(self.phq9) if self.phq9 is not None else -1.0
        delta = float(self.phq9 - self.phq9_previous) if self.phq9 is not None and self.phq9_previous is not None else 0.0
        values += [phq9, delta, float(self.gad7) if self.gad7 is not None else -1.0]
        values += self.style
        values.append(float(sum(1 for d in self.wearable_days if day - RECENT_DAYS < d <= day)))
        return values

    def to_dict(self) -> dict[str, Any]:
        return {
            "series": {metric: s.to_list() for metric, s in self.series.items()},
            "phq9": [self.phq9, self.phq9_previous],
            "gad7": self.gad7,
            "style": self.style,
            "wearable_days": self.wearable_days,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "PersonFeatures":
        person = cls.__new__(cls)
        person.series = {}
        for metric, (mean, var, n, recent) in raw["series"].items():
            _, log, floor = SERIES[metric]
            person.series[metric] = _Series(log, floor, mean, var, n, {int(d): v for d, v in recent})
        person.phq9, person.phq9_previous = raw["phq9"]
        person.gad7 = raw["gad7"]
        person.style = list(raw["style"])
        person.wearable_days = list(raw["wearable_days"])
        return person
