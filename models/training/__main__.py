"""Train carewatch's models on a synthetic cohort and write them to the registry.

    .venv/bin/pip install -e '.[training]'
    .venv/bin/python -m models.training [--version 1] [--people 600] [--seed 11]

Writes `models/registry/text-risk@V`, `deviation@V` (ONNX + model card) and
the card of `crisis-lexicon@V` with its held-out evaluation. Training and
held-out cohorts use different seeds; the evaluation bar of the decision
core uses yet another. ALL DATA IS SYNTHETIC; NO MODEL IS CLINICALLY VALIDATED.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import time
from datetime import date
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from threadpoolctl import threadpool_limits

from .. import evaluation, language
from ..crisis import CrisisDetector
from ..features import FEATURES, NEUTRAL
from ..registry import DEFAULT_ROOT
from ..scoring import run_bytes
from ..simulator import STATEMENT, CohortConfig, simulate
from .dataset import POSITIVE_SEVERITY, Rows, build

#: tokenizer options that make the ONNX graph load without en_US.UTF-8 and match
#: scikit-learn's default tokenizer exactly (FINDINGS.md)
ONNX_TEXT_OPTIONS = {"locale": "C.UTF-8", "tokenexp": r"[\pL\pN_]{2,}"}
NOT_VALIDATED = "Not clinically validated. Trained and evaluated on synthetic data only."


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m models.training")
    parser.add_argument("--version", type=int, default=1)
    parser.add_argument("--people", type=int, default=600)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--holdout-seed", type=int, default=12)
    parser.add_argument("--holdout-people", type=int, default=300)
    parser.add_argument("--out", type=Path, default=DEFAULT_ROOT)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    train_config = CohortConfig(people=args.people, days=args.days, seed=args.seed)
    holdout_config = CohortConfig(people=args.holdout_people, days=args.days, seed=args.holdout_seed)
    train, holdout = build(simulate(train_config)), build(simulate(holdout_config))
    print(f"cohorts: {len(train.labels):,} training rows, {len(holdout.labels):,} held-out rows "
          f"({time.perf_counter() - started:.0f} s)")
    data = {
        "synthetic": True,
        "statement": STATEMENT,
        "generator": "models.simulator",
        "train": {"seed": args.seed, "people": args.people, "days": args.days},
        "holdout": {"seed": args.holdout_seed, "people": args.holdout_people, "days": args.days},
        "label": f"simulated severity >= {POSITIVE_SEVERITY} on the event's day (deterioration episode)",
    }
    _train_text(train, holdout, data, args)
    _train_deviation(train, holdout, data, args)
    _card_crisis(args)
    print(f"done in {time.perf_counter() - started:.0f} s")


def _train_text(train: Rows, holdout: Rows, data: dict, args: argparse.Namespace) -> None:
    model = Pipeline([
        ("tfidf", TfidfVectorizer(max_features=8000, ngram_range=(1, 2), min_df=3)),
        ("lr", LogisticRegression(C=2.0, max_iter=2000)),
    ]).fit(train.texts, train.text_labels)
    onnx = convert_sklearn(
        model, initial_types=[("text", StringTensorType([None, 1]))],
        options={id(model.named_steps["tfidf"]): ONNX_TEXT_OPTIONS, id(model.named_steps["lr"]): {"zipmap": False}},
        target_opset=17,
    )
    scores = _onnx_scores(onnx, np.asarray(holdout.texts, dtype=object).reshape(-1, 1))
    parity = float(np.max(np.abs(scores - model.predict_proba(holdout.texts)[:, 1])))
    if parity > 1e-4:
        raise SystemExit(f"text-risk: ONNX and scikit-learn differ by {parity:.2g} on held-out text")
    metrics = _metrics(holdout.text_labels, scores, {"lang": holdout.text_langs}) | {"onnx_parity_max_abs": parity}
    onnx.graph.name = f"text-risk@{args.version}"  # skl2onnx names graphs with a random uuid
    _write(args.out, "text-risk", args.version, onnx.SerializeToString(), {
        "description": "Risk of a deteriorating episode from one journal or chat text: TF-IDF (words and bigrams) "
                       "and logistic regression, with the raw string going into the ONNX graph.",
        "inputs": [{"name": "text", "type": "tensor(string)", "shape": [None, 1]}],
        "outputs": [{"name": "probabilities", "type": "tensor(float)", "shape": [None, 2]}],
        "score": {"output": "probabilities", "column": 1},
        "features": None,
        "thresholds": _thresholds(holdout.text_labels, scores),
        "training": data | {"rows": len(train.texts)},
        "metrics": metrics,
        "intended_use": "A signal among others for care teams reviewing a person in care; never a diagnosis, "
                        "never alone, never in place of the safety rules.",
        "limitations": [
            "Trained on simulator text composed from templates in English and Spanish: real writing is far more varied.",
            "Says nothing about crisis language; the crisis-lexicon safety rule does that.",
            "Other languages are scored with an English/Spanish vocabulary and get little signal.",
        ],
    })


def _train_deviation(train: Rows, holdout: Rows, data: dict, args: argparse.Namespace) -> None:
    x, y = train.arrays()
    xh, yh = holdout.arrays()
    with threadpool_limits(1):  # one thread: float sums in one order, the same model bytes every run
        model = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.1, max_leaf_nodes=15,
                                               random_state=0).fit(x, y)
    onnx = convert_sklearn(model, initial_types=[("features", FloatTensorType([None, len(FEATURES)]))],
                           options={id(model): {"zipmap": False}}, target_opset=17)
    scores = _onnx_scores(onnx, xh)
    parity = float(np.max(np.abs(scores - model.predict_proba(xh)[:, 1])))
    if parity > 1e-4:
        raise SystemExit(f"deviation: ONNX and scikit-learn differ by {parity:.2g} on held-out rows")
    groups = {"lang": holdout.groups["lang"], "device": holdout.groups["device"]}
    metrics = _metrics(yh.tolist(), scores, groups) | {"onnx_parity_max_abs": parity}
    onnx.graph.name = f"deviation@{args.version}"
    _write(args.out, "deviation", args.version, onnx.SerializeToString(), {
        "description": "Risk of a deteriorating episode from a person's deviations from their own baselines "
                       "(sleep, resting heart rate, HRV, steps, mood), recent PHQ-9 and GAD-7, and the style of "
                       "their writing: histogram gradient boosting over models.features.",
        "inputs": [{"name": "features", "type": "tensor(float)", "shape": [None, len(FEATURES)]}],
        "outputs": [{"name": "probabilities", "type": "tensor(float)", "shape": [None, 2]}],
        "score": {"output": "probabilities", "column": 1},
        "features": list(FEATURES),
        "neutral": list(NEUTRAL),
        "thresholds": _thresholds(yh.tolist(), scores),
        "training": data | {"rows": int(len(y))},
        "metrics": metrics,
        "intended_use": "A signal among others for care teams: who may be drifting from their own baseline.",
        "limitations": [
            "Simulated physiology follows published directions of effect with invented sizes.",
            "People with a phone only (no watch or ring) give less signal: see the device slice.",
            "Needs about a week of data per person before deviations mean anything (warm-up).",
        ],
    })


def _card_crisis(args: argparse.Namespace) -> None:
    """Evaluate the lexicon on held-out synthetic sentences and write its card."""
    folder = args.out / f"crisis-lexicon@{args.version}"
    detector = CrisisDetector.load(folder / "lexicon.json")
    rng = random.Random(f"crisis-holdout:{args.holdout_seed}")
    per_language = {}
    for lang in language.LANGUAGES:
        sets = {
            "crisis": [language.crisis_sentence(lang, rng) for _ in range(2000)],
            "idiom": [language.idiom_sentence(lang, rng) for _ in range(2000)],
            "prevention": [language.prevention_sentence(lang, rng) for _ in range(1000)],
            "everyday": [language.compose(lang, rng.random(), rng) for _ in range(5000)],
        }
        per_language[lang] = {
            "crisis_missed": sum(not detector.detect(t, lang).flagged for t in sets["crisis"]),
            "crisis_total": len(sets["crisis"]),
            **{f"{name}_fired": sum(detector.detect(t, lang).flagged for t in sets[name])
               for name in ("idiom", "prevention", "everyday")},
            **{f"{name}_total": len(sets[name]) for name in ("idiom", "prevention", "everyday")},
        }
    _write(args.out, "crisis-lexicon", args.version, None, {
        "kind": "lexicon",
        "file": "lexicon.json",
        "description": "Explicit suicidal intent, plan and method expressions (English, Spanish), matched per "
                       "sentence; fires the critical safety rule whatever any model says.",
        "inputs": [{"name": "text", "type": "string"}, {"name": "lang", "type": "BCP 47 tag, optional"}],
        "outputs": [{"name": "kinds", "type": "subset of intent, plan, method"}],
        "features": None,
        "thresholds": None,
        "training": {"synthetic": True, "statement": "Curated by hand; evaluated on simulator sentences.",
                     "holdout_seed": args.holdout_seed},
        "metrics": {"held_out_synthetic": per_language},
        "intended_use": "The crisis-language safety rule: recall first, a human reviews every alert.",
        "limitations": [
            "Evaluated on synthetic sentences from the simulator's phrase bank, which shares authorship with the "
            "lexicon: these numbers show what it misses on phrasing it was written for, not on real language.",
            "Indirect or coded language (\"I bought a rope\", euphemisms, slang) is missed.",
            "English and Spanish only; text in other languages is matched against both.",
        ],
    })


def _onnx_scores(model, inputs: np.ndarray) -> np.ndarray:
    return run_bytes(model.SerializeToString(), "probabilities", inputs)[:, 1]


def _metrics(labels, scores: np.ndarray, groups: dict) -> dict:
    return {
        "held_out": {
            "rows": len(labels),
            "prevalence": float(np.mean(labels)),
            "auroc": evaluation.auroc(labels, scores),
            "auprc": evaluation.auprc(labels, scores),
            "brier": evaluation.brier(labels, scores),
            "ece": evaluation.expected_calibration_error(labels, scores),
            "calibration": evaluation.calibration(labels, scores),
            "slices": evaluation.sliced(labels, scores, groups),
        }
    }


def _thresholds(labels, scores: np.ndarray) -> dict[str, float]:
    """watch at 95% specificity, urgent at 99%, on held-out rows."""
    return {"watch": evaluation.threshold_at_specificity(labels, scores, 0.95),
            "urgent": evaluation.threshold_at_specificity(labels, scores, 0.99)}


def _write(root: Path, name: str, version: int, model: bytes | None, card: dict) -> None:
    folder = root / f"{name}@{version}"
    folder.mkdir(parents=True, exist_ok=True)
    file = card.pop("file", "model.onnx")
    if model is not None:
        (folder / file).write_bytes(model)
    manifest = {
        "name": name,
        "version": version,
        "kind": card.pop("kind", "onnx"),
        "file": file,
        "sha256": hashlib.sha256((folder / file).read_bytes()).hexdigest(),
        "created": date.today().isoformat(),
        **card,
        "clinical_validation": NOT_VALIDATED,
    }
    text = json.dumps(evaluation.finite(manifest), indent=2, ensure_ascii=False, allow_nan=False)
    (folder / "manifest.json").write_text(text + "\n", encoding="utf-8")
    print(f"wrote {folder}: {json.dumps(manifest['metrics'])[:300]}")


if __name__ == "__main__":
    main()
