"""`carewatch evaluate`: replay a labelled cohort and report how early and how accurately alerts fire.

Writes `report.md` and PNG plots (lead-time histogram, calibration curves,
sensitivity against alert burden over thresholds) to a folder, and returns
the numbers. Metrics are models/evaluation.py's; the replay is the worker's
code path (streams/replay.py). SYNTHETIC COHORTS ONLY; NOT CLINICALLY VALIDATED.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from models import evaluation
from models.evaluation import DAY

from .config import Settings
from .pipeline import Pipeline
from .replay import Replay, replay, sweep

__all__ = ["evaluate"]

#: event-level label for model metrics: the simulator's severity at or above this
POSITIVE_SEVERITY = 0.2
SCALES = (0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.2, 1.5)


def evaluate(lines: Iterable[bytes], labels: Mapping[str, Any], *, settings: Settings, out: Path | None,
             target: float = 0.85, lead_days: float = 3.0) -> dict[str, Any]:
    pipeline = Pipeline.from_settings(settings)
    run = replay(lines, pipeline=pipeline)
    alerts = [(a.subject, t, a.severity) for a, t in run.alerts]
    overall = evaluation.episode_metrics(alerts, labels, event_counts=run.event_times, lead_days=lead_days)
    groups = {attribute: _by_group(alerts, labels, run, attribute, lead_days) for attribute in ("lang", "device")}
    models = _model_metrics(run, labels)
    curve = []
    for scale, swept in sweep(run, settings.detection, SCALES):
        m = evaluation.episode_metrics(swept, labels, event_counts=run.event_times, lead_days=lead_days)
        curve.append({"scale": scale, "watch_high": round(settings.detection.watch_high * scale, 4),
                      "sensitivity": m["crisis_alerted_early_share"],
                      "false_alerts_per_100_person_days": m["false_alerts_per_100_person_days"]})
    meeting = [c for c in curve if c["sensitivity"] >= target]
    chosen = min(meeting, key=lambda c: c["false_alerts_per_100_person_days"]) if meeting else None
    stages = {stage: run.events / seconds for stage, seconds in run.stage_seconds.items() if seconds > 0}
    result = {
        "synthetic": True,
        "events": run.events,
        "outcomes": dict(run.outcomes),
        "replay_events_per_second": run.events / run.seconds if run.seconds else None,
        "stage_events_per_second": stages,
        "alerts_by_severity": _count(a.severity for a, _ in run.alerts),
        "alerts_by_reason": _count(a.reasons[0].code for a, _ in run.alerts),
        "episodes": overall,
        "groups": groups,
        "models": models,
        "thresholds": {"target_sensitivity": target, "curve": curve, "meets_target": chosen},
        "settings": settings.detection.model_dump(),
        "model_versions": pipeline.model_versions,
    }
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "evaluation.json").write_text(json.dumps(evaluation.finite(result), indent=2))
        plots = _plots(out, overall, models, curve, target)
        (out / "report.md").write_text(_markdown(result, labels, plots, lead_days))
    return result


def _count(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return dict(sorted(counts.items()))


def _by_group(alerts, labels, run: Replay, attribute: str, lead_days: float) -> dict[str, dict]:
    out = {}
    for value in sorted({p[attribute] for p in labels["people"]}):
        people = [p for p in labels["people"] if p[attribute] == value]
        subjects = {p["subject"] for p in people}
        m = evaluation.episode_metrics([a for a in alerts if a[0] in subjects], {**labels, "people": people},
                                       event_counts=run.event_times, lead_days=lead_days)
        out[value] = {k: m[k] for k in ("people", "crisis_episodes", "crisis_alerted_early_share",
                                        "false_alerts_per_100_person_days", "precision")}
    return out


def _model_metrics(run: Replay, labels: Mapping[str, Any]) -> dict[str, dict]:
    start = datetime.fromisoformat(labels["config"]["start"].replace("Z", "+00:00")).timestamp()
    episodes = {p["subject"]: p["episode"] for p in labels["people"]}
    y, deviation, fused, text_y, text = [], [], [], [], []
    for trace in run.traces:
        label = int(evaluation.severity_from_label(episodes.get(trace.subject), (trace.time - start) / DAY)
                    >= POSITIVE_SEVERITY)
        y.append(label)
        deviation.append(trace.deviation)
        fused.append(trace.risk)
        if trace.text_risk is not None:
            text_y.append(label)
            text.append(trace.text_risk)
    out = {}
    for name, labels_, scores in (("deviation", y, deviation), ("text-risk", text_y, text), ("fused", y, fused)):
        out[name] = {"rows": len(scores), "auroc": evaluation.auroc(labels_, scores),
                     "auprc": evaluation.auprc(labels_, scores), "brier": evaluation.brier(labels_, scores),
                     "ece": evaluation.expected_calibration_error(labels_, scores),
                     "calibration": evaluation.calibration(labels_, scores)}
    return out


def _plots(out: Path, overall: dict, models: dict, curve: list[dict], target: float) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    made = []
    lead = overall["lead_days_before_crisis"].get("values", [])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(lead, bins=np.arange(0, max(lead + [1]) + 1, 1), color="#3568a8")
    ax.axvline(3, color="#b3261e", linestyle="--", label="3 days")
    ax.set(xlabel="days from first alert to crisis", ylabel="crisis episodes", title="Lead time (synthetic cohort)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "lead_time.png", dpi=110)
    made.append("lead_time.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="#888", linestyle=":")
    for name, m in models.items():
        table = m["calibration"]
        ax.plot([r["mean_score"] for r in table], [r["observed"] for r in table], marker="o", label=name)
    ax.set(xlabel="mean score", ylabel="observed rate", title="Calibration (synthetic cohort)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "calibration.png", dpi=110)
    made.append("calibration.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([c["false_alerts_per_100_person_days"] for c in curve], [c["sensitivity"] for c in curve], marker="o")
    for c in curve:
        ax.annotate(f"{c['watch_high']:.2f}", (c["false_alerts_per_100_person_days"], c["sensitivity"]), fontsize=7)
    ax.axhline(target, color="#b3261e", linestyle="--", label=f"target {target:.0%}")
    ax.set(xlabel="false alerts per 100 person-days", ylabel="crisis episodes alerted >= 3 days early",
           title="Sensitivity against burden (labels: watch mark)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "sensitivity_burden.png", dpi=110)
    made.append("sensitivity_burden.png")
    plt.close(fig)
    return made


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{x:.1%}"


def _markdown(result: dict, labels: Mapping, plots: list[str], lead_days: float) -> str:
    e = result["episodes"]
    config = labels["config"]
    chosen = result["thresholds"]["meets_target"]
    lines = [
        "# carewatch evaluation",
        "",
        "**Synthetic cohort, not clinically validated.** " + labels.get("statement", ""),
        "",
        f"Cohort: {config['people']} people x {config['days']} days, seed {config['seed']}; "
        f"{result['events']:,} events replayed through the worker's code path at "
        f"{result['replay_events_per_second']:,.0f} events/s. Models: "
        + ", ".join(result["model_versions"].values()) + ".",
        "",
        "## Alerts against ground truth",
        "",
        "| measure | value |",
        "|---|---|",
        f"| crisis episodes alerted {lead_days:g}+ days before the crisis | "
        f"{e['crisis_alerted_early']} of {e['crisis_episodes']} ({_pct(e['crisis_alerted_early_share'])}) |",
        f"| episodes alerted at all (onset to recovery) | {e['episodes_alerted']} of {e['episodes']} |",
        f"| lead time before crisis, days (median, p10-p90) | {e['lead_days_before_crisis'].get('median', float('nan')):.1f} "
        f"({e['lead_days_before_crisis'].get('p10', float('nan')):.1f}-{e['lead_days_before_crisis'].get('p90', float('nan')):.1f}) |",
        f"| days after onset to first alert (median) | {e['days_after_onset'].get('median', float('nan')):.1f} |",
        f"| false alerts per 100 person-days (alert burden) | {e['false_alerts_per_100_person_days']:.2f} |",
        f"| precision (alerts inside an episode) | {_pct(e['precision'])} |",
        f"| ERDE5 / ERDE50 | {e['erde_5']:.3f} / {e['erde_50']:.3f} |",
        f"| F_latency | {e['f_latency']:.3f} |",
        "",
        "ERDE (Losada & Crestani 2016) and F_latency (Sadeque et al. 2018) take a person's events as their "
        "writings: k counts the person's events from the episode's onset to the first alert; c_fp is the share of "
        "people with an episode; F_latency's p is eRisk's 0.0078.",
        "",
        "Alerts by severity: " + ", ".join(f"{k} {v}" for k, v in result["alerts_by_severity"].items()) + ". "
        "By first reason: " + ", ".join(f"{k} {v}" for k, v in result["alerts_by_reason"].items()) + ".",
        "",
        "## Fairness slices",
        "",
        "| group | value | people | crisis episodes | alerted early | false alerts / 100 person-days | precision |",
        "|---|---|---|---|---|---|---|",
    ]
    for attribute, values in result["groups"].items():
        for value, m in values.items():
            lines.append(f"| {attribute} | {value} | {m['people']} | {m['crisis_episodes']} | "
                         f"{_pct(m['crisis_alerted_early_share'])} | {m['false_alerts_per_100_person_days']:.2f} | "
                         f"{_pct(m['precision'])} |")
    lines += ["", "## Models on this cohort (event level, label: severity >= 0.2)", "",
              "| model | rows | AUROC | AUPRC | Brier | ECE |", "|---|---|---|---|---|---|"]
    for name, m in result["models"].items():
        lines.append(f"| {name} | {m['rows']:,} | {m['auroc']:.3f} | {m['auprc']:.3f} | {m['brier']:.3f} | {m['ece']:.3f} |")
    lines += ["", "## Thresholds", "", "| watch mark | sensitivity (3+ days early) | false alerts / 100 person-days |",
              "|---|---|---|"]
    for c in result["thresholds"]["curve"]:
        lines.append(f"| {c['watch_high']:.3f} | {_pct(c['sensitivity'])} | {c['false_alerts_per_100_person_days']:.2f} |")
    target = result["thresholds"]["target_sensitivity"]
    lines += ["", (f"The lowest-burden threshold that meets {target:.0%} sensitivity: watch mark "
                   f"{chosen['watch_high']:.3f} (every mark scaled by {chosen['scale']:g}), "
                   f"{chosen['false_alerts_per_100_person_days']:.2f} false alerts per 100 person-days.")
              if chosen else f"No threshold tried meets {target:.0%} sensitivity."]
    lines += ["", "## Speed of the code path, offline", "", "| stage | events/s |", "|---|---|"]
    for stage, rate in result["stage_events_per_second"].items():
        lines.append(f"| {stage} | {rate:,.0f} |")
    lines += [""] + [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(lines)

