"""The scorer: batches, shadow versions, hot reload, explanations, tokenizer parity."""

from __future__ import annotations

import random
import shutil
import threading

import numpy as np
import pytest

from models import language
from models.features import FEATURES, NEUTRAL
from models.registry import DEFAULT_ROOT, Registry
from models.scoring import Scorer


@pytest.fixture(scope="module")
def scorer():
    return Scorer()


def test_one_batch_scores_like_single_calls(scorer):
    rng = random.Random(3)
    texts = [language.compose(rng.choice(language.LANGUAGES), rng.random(), rng) for _ in range(64)]
    batch = scorer.text_risk(texts).live
    singles = np.array([scorer.text_risk([t]).live[0] for t in texts])
    assert batch.shape == (64,)
    np.testing.assert_allclose(batch, singles, rtol=1e-5, atol=1e-6)
    assert scorer.text_risk([]).live.shape == (0,)


def test_hopeless_text_scores_above_everyday_text(scorer):
    scores = scorer.text_risk(["I always feel hopeless, nothing matters and it's all my fault",
                               "Had a lovely walk with my sister, I feel grateful"]).live
    assert scores[0] > scores[1]


def test_deviation_explains_the_rows_that_ask(scorer):
    calm = list(NEUTRAL)
    drifting = dict(zip(FEATURES, calm)) | {"sleep_z3": -2.5, "sleep_z7": -2.0, "mood_z3": -2.5, "mood_z7": -2.2,
                                            "phq9_total": 17, "phq9_delta": 8, "wearable_days_7": 7}
    result = scorer.deviation([calm, list(drifting.values())], explain=[False, True])
    assert result.live[1] > result.live[0]
    assert result.contributions[0] == []
    top = [name for name, _ in result.contributions[1]]
    assert len(top) == 3 and set(top) <= {"sleep_z3", "sleep_z7", "mood_z3", "mood_z7", "phq9_total", "phq9_delta"}
    assert result.version == "deviation@1"


def test_rows_scored_earlier_are_explained_from_their_scores(scorer):
    rows = [list(NEUTRAL), [v * 1.5 - 1 for v in NEUTRAL], [-2.0] * len(NEUTRAL)]
    whole = scorer.deviation(rows, explain=[True] * len(rows))
    assert scorer.explain(rows, scores=whole.live, version=whole.version) == whole.contributions
    # the explanation is measured from the score it is handed: a lower one gives smaller drops
    lower = scorer.explain(rows, scores=whole.live * 0.5, version=whole.version)
    assert lower != whole.contributions
    # scores from a version no longer live are not trusted: the rows are scored again
    assert scorer.explain(rows, scores=whole.live * 0.5, version="deviation@0") == whole.contributions
    assert scorer.explain([], scores=[], version=whole.version) == []


def test_explanations_match_resetting_every_feature_one_at_a_time(scorer):
    rng = np.random.default_rng(5)
    neutral = np.asarray(NEUTRAL, dtype=np.float32)
    rows = np.repeat(neutral[None, :], 8, axis=0)
    away = rng.random(rows.shape) < 0.4  # most features at neutral, as in a person's usual week
    rows[away] = (neutral + rng.normal(0, 2, rows.shape).astype(np.float32))[away]
    scores = scorer.deviation(rows).live
    logit = lambda p: np.log(np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7) / (1 - np.clip(p, 1e-7, 1 - 1e-7)))  # noqa: E731
    explained = scorer.explain(rows, scores=scores, version="deviation@1", top=17)
    assert sum(len(found) for found in explained) >= 8
    for row, score, found in zip(rows, scores, explained):
        reset = np.repeat(row[None, :], len(row), axis=0)
        reset[np.arange(len(row)), np.arange(len(row))] = neutral
        drops = logit(np.float32(score)) - logit(scorer.deviation(reset).live)
        expected = {FEATURES[j]: round(float(drops[j]), 4) for j in range(len(row)) if drops[j] > 1e-6}
        assert dict(found) == pytest.approx(expected, abs=1e-4)


def test_a_shadow_version_is_scored_beside_the_live_one(tmp_path):
    root = tmp_path / "registry"
    shutil.copytree(DEFAULT_ROOT, root)
    shutil.copytree(root / "text-risk@1", root / "text-risk@2")
    manifest = (root / "text-risk@2" / "manifest.json")
    manifest.write_text(manifest.read_text().replace('"version": 1', '"version": 2'))
    scorer = Scorer(registry=Registry(root=root), shadow={"text-risk": 2}, live={"text-risk": 1})
    result = scorer.text_risk(["a text"])
    assert (result.version, result.shadow_version) == ("text-risk@1", "text-risk@2")
    np.testing.assert_allclose(result.live, result.shadow)


def test_hot_reload_drops_no_request(tmp_path):
    root = tmp_path / "registry"
    shutil.copytree(DEFAULT_ROOT, root)
    scorer = Scorer(registry=Registry(root=root), live={"text-risk": 1})
    shutil.copytree(root / "text-risk@1", root / "text-risk@2")
    manifest = (root / "text-risk@2" / "manifest.json")
    manifest.write_text(manifest.read_text().replace('"version": 1', '"version": 2'))
    results, errors = [], []
    stop = threading.Event()

    def score():
        while not stop.is_set():
            try:
                results.append(scorer.text_risk(["one", "two"]).version)
            except Exception as exc:  # any failure is a dropped request
                errors.append(exc)

    threads = [threading.Thread(target=score) for _ in range(2)]
    for t in threads:
        t.start()
    while len(results) < 50:
        pass
    assert scorer.reload("text-risk") == "text-risk@2"
    count = len(results)
    while len(results) < count + 50:
        pass
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert results[0] == "text-risk@1" and results[-1] == "text-risk@2"
    assert scorer.versions["text-risk"] == "text-risk@2"


def test_tokenizer_parity_with_scikit_learn_including_accents():
    """Convert a TF-IDF model the way training does; ONNX must tokenize exactly like scikit-learn."""
    import onnxruntime
    from sklearn.feature_extraction.text import TfidfVectorizer
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import StringTensorType

    from models.training.__main__ import ONNX_TEXT_OPTIONS

    rng = random.Random(8)
    texts = [language.compose(rng.choice(language.LANGUAGES), rng.random(), rng) for _ in range(600)]
    texts += ["Ñandú, pingüino y café: ¡qué día!", "naïve résumé — déjà vu", "x y z", "ÉTÉ été Été", "año_2026 test_1"]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=1).fit(texts)
    onnx = convert_sklearn(vectorizer, initial_types=[("text", StringTensorType([None, 1]))],
                           options={id(vectorizer): ONNX_TEXT_OPTIONS}, target_opset=17)
    session = onnxruntime.InferenceSession(onnx.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"text": np.asarray(texts, dtype=object).reshape(-1, 1)})[0]
    np.testing.assert_allclose(got, vectorizer.transform(texts).toarray(), atol=1e-6)
