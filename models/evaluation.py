"""Metrics of evaluation, as pure functions of scores, labels and alerts.

numpy only, so `carewatch evaluate` runs without the training extra.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["auprc", "auroc", "brier", "calibration", "expected_calibration_error", "sliced", "threshold_at_specificity"]


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
