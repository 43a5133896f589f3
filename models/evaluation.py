"""Metrics of evaluation, as pure functions of scores, labels and alerts.

numpy only, so `carewatch evaluate` runs without the training extra.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "auprc",
    "auroc",
    "brier",
    "calibration",
    "episode_metrics",
    "expected_calibration_error",
    "finite",
    "severity_from_label",
    "sliced",
    "threshold_at_specificity",
]


def auroc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half)."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=float)
    sorted_scores = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def auprc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Average precision: the mean of precision at each true positive, by descending score."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    if not y.any():
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    hits = y[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].mean())


def brier(labels: Sequence[int], scores: Sequence[float]) -> float:
    y = np.asarray(labels, dtype=float)
    s = np.asarray(scores, dtype=float)
    return float(np.mean((s - y) ** 2))


def calibration(labels: Sequence[int], scores: Sequence[float], bins: int = 10) -> list[dict[str, float]]:
    """Reliability table: per score bin, mean score, observed rate and count."""
    y = np.asarray(labels, dtype=float)
    s = np.asarray(scores, dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(s, edges[1:-1]), 0, bins - 1)
    table = []
    for b in range(bins):
        mask = index == b
        if mask.any():
            table.append({"low": float(edges[b]), "high": float(edges[b + 1]), "mean_score": float(s[mask].mean()),
                          "observed": float(y[mask].mean()), "count": int(mask.sum())})
    return table


def expected_calibration_error(labels: Sequence[int], scores: Sequence[float], bins: int = 10) -> float:
    table = calibration(labels, scores, bins)
    total = sum(row["count"] for row in table)
    return float(sum(row["count"] * abs(row["mean_score"] - row["observed"]) for row in table) / max(total, 1))


def threshold_at_specificity(labels: Sequence[int], scores: Sequence[float], specificity: float) -> float:
    """The lowest score threshold whose false-positive rate is at most 1 - specificity."""
    y = np.asarray(labels, dtype=bool)
    negatives = np.sort(np.asarray(scores, dtype=float)[~y])
    if len(negatives) == 0:
        return 0.5
    return float(negatives[min(len(negatives) - 1, int(np.ceil(specificity * len(negatives))) - 1)]) + 1e-6


def sliced(labels: Sequence[int], scores: Sequence[float], groups: Mapping[str, Sequence[str]]) -> dict[str, dict]:
    """AUROC, AUPRC and prevalence per value of each group attribute (fairness slices)."""
    y = np.asarray(labels)
    s = np.asarray(scores)
    out: dict[str, dict] = {}
    for attribute, values in groups.items():
        v = np.asarray(values)
        out[attribute] = {
            str(value): {"auroc": auroc(y[v == value], s[v == value]), "auprc": auprc(y[v == value], s[v == value]),
                         "rows": int((v == value).sum()), "prevalence": float(y[v == value].mean())}
            for value in sorted(set(values))
        }
    return out


# --- alerts against ground truth ---------------------------------------------------
#
# An alert is (subject, time in Unix seconds, severity). Labels are the
# simulator's (`Cohort.labels()`): per person an optional episode with onset,
# peak, crisis and end days counted from the cohort's start.

DAY = 86400.0
#: eRisk's latency penalty parameter (Sadeque et al. 2018)
F_LATENCY_P = 0.0078


def severity_from_label(episode: Mapping | None, day: float) -> float:
    """The simulator's severity curve, rebuilt from a label (0 outside the episode)."""
    if not episode or day < episode["onset_day"]:
        return 0.0
    onset, peak_day, end = episode["onset_day"], episode["peak_day"], episode["end_day"]
    if day <= peak_day:
        return episode["peak"] * (day - onset) / max(1, peak_day - onset)
    return episode["peak"] * max(0.0, 1 - (day - peak_day) / max(1, end - peak_day))


def episode_metrics(alerts: Sequence[tuple[str, float, str]], labels: Mapping, *,
                    event_counts: Mapping[str, Sequence[float]], lead_days: float = 3.0) -> dict:
    """How early and how accurately alerts fire, against the cohort's ground truth.

    * crisis episodes alerted `lead_days` or more before the crisis (the bar);
    * lead time of the first alert in an episode: days before the crisis, days after onset;
    * false alerts (outside any episode, onset to end) per 100 person-days, and precision;
    * ERDE_5 and ERDE_50 (Losada & Crestani 2016) and F_latency (Sadeque et al. 2018), with a
      person's "writings" taken as their events: k is the number of the person's events from
      the episode's onset to the decision (the first alert in the episode).
    """
    start = _start(labels)
    people = {p["subject"]: p for p in labels["people"]}
    by_subject: dict[str, list[float]] = {}
    for subject, time, _ in alerts:
        by_subject.setdefault(subject, []).append(time)
    for times in by_subject.values():
        times.sort()
    days = labels["config"]["days"]
    crisis_total = crisis_early = episodes = episodes_alerted = 0
    before_crisis: list[float] = []
    after_onset: list[float] = []
    true_alerts = false_alerts = 0
    decisions: dict[str, tuple[bool, int | None]] = {}  # subject -> (decided positive, k)
    for subject, person in people.items():
        episode = person["episode"]
        times = by_subject.get(subject, [])
        if episode:
            lo, hi = start + episode["onset_day"] * DAY, start + (episode["end_day"] + 1) * DAY
        else:
            lo = hi = float("inf")
        inside = [t for t in times if lo <= t < hi]
        true_alerts += len(inside)
        false_alerts += len(times) - len(inside)
        if not episode:
            decisions[subject] = (bool(times), None)
            continue
        episodes += 1
        first = inside[0] if inside else None
        if first is not None:
            episodes_alerted += 1
            after_onset.append((first - lo) / DAY)
            k = sum(1 for t in event_counts.get(subject, ()) if lo <= t <= first)
            decisions[subject] = (True, max(1, k))
        else:
            decisions[subject] = (False, None)
        if episode["crisis_day"] is not None:
            crisis_total += 1
            crisis = start + episode["crisis_day"] * DAY
            early = [t for t in inside if t <= crisis - lead_days * DAY]
            if early:
                crisis_early += 1
            if first is not None and first <= crisis:
                before_crisis.append((crisis - first) / DAY)
    person_days = len(people) * days
    positives = sum(1 for p in people.values() if p["episode"])
    return {
        "people": len(people),
        "person_days": person_days,
        "episodes": episodes,
        "episodes_alerted": episodes_alerted,
        "crisis_episodes": crisis_total,
        "crisis_alerted_early": crisis_early,
        "crisis_alerted_early_share": crisis_early / crisis_total if crisis_total else float("nan"),
        "lead_days_before_crisis": _distribution(before_crisis),
        "days_after_onset": _distribution(after_onset),
        "alerts": true_alerts + false_alerts,
        "false_alerts": false_alerts,
        "false_alerts_per_100_person_days": 100 * false_alerts / person_days if person_days else float("nan"),
        "precision": true_alerts / (true_alerts + false_alerts) if true_alerts + false_alerts else float("nan"),
        "erde_5": _erde(decisions, people, 5, positives),
        "erde_50": _erde(decisions, people, 50, positives),
        "f_latency": _f_latency(decisions, people),
    }


def _start(labels: Mapping) -> float:
    from datetime import datetime

    return datetime.fromisoformat(labels["config"]["start"].replace("Z", "+00:00")).timestamp()


def _distribution(values: Sequence[float]) -> dict:
    if not values:
        return {"count": 0}
    v = np.asarray(values)
    return {"count": len(v), "median": float(np.median(v)), "p10": float(np.percentile(v, 10)),
            "p90": float(np.percentile(v, 90)), "values": [round(float(x), 2) for x in v]}


def _erde(decisions: Mapping, people: Mapping, o: int, positives: int) -> float:
    """ERDE_o: mean cost per person; late true positives cost 1 - 1/(1 + e^(k - o))."""
    c_fp = positives / len(people) if people else 0.0
    cost = 0.0
    for subject, (decided, k) in decisions.items():
        positive = people[subject]["episode"] is not None
        if decided and not positive:
            cost += c_fp
        elif not decided and positive:
            cost += 1.0
        elif decided and positive:
            cost += 1 - 1 / (1 + np.exp(min(k - o, 50)))
    return cost / len(decisions) if decisions else float("nan")


def _f_latency(decisions: Mapping, people: Mapping) -> float:
    tp = sum(1 for s, (d, _) in decisions.items() if d and people[s]["episode"])
    fp = sum(1 for s, (d, _) in decisions.items() if d and not people[s]["episode"])
    fn = sum(1 for s, (d, _) in decisions.items() if not d and people[s]["episode"])
    if tp == 0:
        return 0.0
    f1 = 2 * tp / (2 * tp + fp + fn)
    penalties = [-1 + 2 / (1 + np.exp(-F_LATENCY_P * (k - 1)))
                 for s, (d, k) in decisions.items() if d and people[s]["episode"]]
    return float(f1 * (1 - np.median(penalties)))


def finite(value):
    """A structure safe for JSON: NaN (an undefined metric, e.g. a slice without positives) becomes None."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if isinstance(value, np.generic):
        return finite(value.item())
    return value
