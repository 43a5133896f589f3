"""The scorer: ONNX models from the registry, run in micro-batches.

The only module that imports onnxruntime. A `Scorer` holds, per model name,
a live version and optionally a shadow version; every call scores a whole
batch with one `run` per model and reports both, so a new version can be
watched on live traffic before it decides anything. `reload` swaps a
version in without dropping a request: a call already running keeps the
session it started with. The deviation model explains its scores: for the
rows that ask, each feature is set back to its neutral value and the drop
in score is that feature's contribution (one extra batched run, also
for rows scored earlier: `explain`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime

from .exceptions import RegistryError, ScoringError
from .registry import Card, Registry

__all__ = ["Model", "Scorer", "Scores", "run_bytes"]

TEXT_RISK = "text-risk"
DEVIATION = "deviation"


@dataclass(frozen=True, slots=True)
class Scores:
    """One batch's scores: live, and shadow when a shadow version is set."""

    version: str
    live: np.ndarray
    shadow_version: str | None = None
    shadow: np.ndarray | None = None
    #: per row: the top (feature, contribution in log-odds) pairs, for the rows that asked
    contributions: list[list[tuple[str, float]]] | None = None


class Model:
    """One ONNX model version: a session whose signature matches its card."""

    def __init__(self, card: Card, *, threads: int = 1) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = onnxruntime.InferenceSession(str(card.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise RegistryError(f"{card.ref}: onnxruntime cannot load {card.path.name} ({type(exc).__name__})") from None
        self.card = card
        self.ref = card.ref
        _check_signature(card, self.session)
        score = card.manifest["score"]
        self._output, self._column = score["output"], score["column"]
        self._input = card.manifest["inputs"][0]["name"]

    def run(self, batch: np.ndarray) -> np.ndarray:
        try:
            return self.session.run([self._output], {self._input: batch})[0][:, self._column]
        except Exception as exc:
            raise ScoringError(f"{self.ref}: cannot score a batch of shape {batch.shape} ({type(exc).__name__})") from None


def run_bytes(model: bytes, output: str, inputs: np.ndarray) -> np.ndarray:
    """Run a serialised ONNX model once, on one thread: training checks its conversions with this."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return session.run([output], {session.get_inputs()[0].name: inputs})[0]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def _vectors(rows: Sequence[Sequence[float]]) -> np.ndarray:
    batch = np.asarray(rows, dtype=np.float32)
    if batch.ndim != 2:
        raise ScoringError(f"deviation: expected a 2-d batch of feature vectors, got shape {batch.shape}")
    return batch


def _check_signature(card: Card, session: onnxruntime.InferenceSession) -> None:
    expected_in = [(i["name"], i["type"]) for i in card.manifest["inputs"]]
    actual_in = [(i.name, i.type) for i in session.get_inputs()]
    expected_out = {o["name"]: o["type"] for o in card.manifest["outputs"]}
    actual_out = {o.name: o.type for o in session.get_outputs()}
    if expected_in != actual_in:
        raise RegistryError(f"{card.ref}: the card says inputs {expected_in}, the model has {actual_in}")
    for name, kind in expected_out.items():
        if actual_out.get(name) != kind:
            raise RegistryError(f"{card.ref}: the card says output {name} is {kind}, the model has {actual_out.get(name)}")
    if card.features and session.get_inputs()[0].shape[-1] != len(card.features):
        raise RegistryError(f"{card.ref}: {len(card.features)} features in the card, "
                            f"{session.get_inputs()[0].shape[-1]} in the model")


class Scorer:
    def __init__(
        self,
        *,
        registry: Registry | None = None,
        threads: int = 1,
        live: Mapping[str, int | None] | None = None,
        shadow: Mapping[str, int] | None = None,
        observe: Callable[[str, int, float], None] | None = None,
    ) -> None:
        """`live` names a version per model (None: the newest); `shadow`, a version to run beside it.

        `observe(model, batch size, seconds)` hears every live run (for metrics; models/ keeps none itself).
        """
        self.observe = observe
        self._registry = registry or Registry()
        self._threads = threads
        self._lock = threading.Lock()
        self._live: dict[str, Model] = {}
        self._shadow: dict[str, Model] = {}
        for name, version in (live or {TEXT_RISK: None, DEVIATION: None}).items():
            self._live[name] = self._load(name, version)
        for name, version in (shadow or {}).items():
            self._shadow[name] = self._load(name, version)

    def _load(self, name: str, version: int | None) -> Model:
        return Model(self._registry.card(name, version), threads=self._threads)

    @property
    def versions(self) -> dict[str, str]:
        """name -> live `name@version`, as risk records and alerts report them."""
        return {name: model.ref for name, model in self._live.items()}

    def card(self, name: str) -> Card:
        return self._live[name].card

    def reload(self, name: str, version: int | None = None, *, shadow: bool = False) -> str:
        """Load a version (the newest by default), then swap it in; returns its ref."""
        model = self._load(name, version)  # loading happens outside the lock: calls go on meanwhile
        with self._lock:
            (self._shadow if shadow else self._live)[name] = model
        return model.ref

    def drop_shadow(self, name: str) -> None:
        with self._lock:
            self._shadow.pop(name, None)

    def text_risk(self, texts: Sequence[str]) -> Scores:
        """Scores for a batch of texts, one `run` per model."""
        batch = np.asarray(texts, dtype=object).reshape(-1, 1)
        return self._score(TEXT_RISK, batch)

    def deviation(self, rows: Sequence[Sequence[float]], *, explain: Sequence[bool] | None = None,
                  top: int = 3) -> Scores:
        """Scores for a batch of feature vectors; contributions for the rows where `explain` is true."""
        batch = _vectors(rows)
        scores = self._score(DEVIATION, batch)
        if explain is None or not any(explain):
            return scores
        wanted = [i for i, flag in enumerate(explain) if flag]
        contributions: list[list[tuple[str, float]]] = [[] for _ in range(len(batch))]
        for row, found in zip(wanted, self.explain(batch[wanted], scores=scores.live[wanted],
                                                   version=scores.version, top=top)):
            contributions[row] = found
        return Scores(scores.version, scores.live, scores.shadow_version, scores.shadow, contributions)

    def explain(self, rows: Sequence[Sequence[float]], *, scores: Sequence[float], version: str,
                top: int = 3) -> list[list[tuple[str, float]]]:
        """The top contributions for rows already scored by deviation `version`, one batched run.

        Rows scored by a version since swapped out are scored again, so a score and its
        explanation always come from one model.
        """
        if len(rows) == 0:
            return []
        batch = _vectors(rows)
        model = self._live[DEVIATION]  # the reference taken once: reload-safe
        live = np.asarray(scores, dtype=np.float32) if model.ref == version else model.run(batch)
        neutral = np.asarray(model.card.manifest["neutral"], dtype=np.float32)
        features = model.card.features
        # Each feature away from its neutral value is reset to it, one at a time, in one batch; a
        # feature at neutral already would not move the score (in the synthetic cohort, 6 of 17 are away).
        row, column = np.nonzero(batch != neutral)
        drops = np.zeros(batch.shape, dtype=np.float64)
        if len(row):
            ablated = batch[row]
            ablated[np.arange(len(row)), column] = neutral[column]
            # in log-odds: a probability near 1 hardly moves when one feature is reset
            drops[row, column] = _logit(live)[row] - _logit(model.run(ablated))
        # one argsort and one conversion for the batch: numpy's per-row and per-element calls were 14% of this
        order = np.argsort(-drops, axis=1)[:, :top]
        chosen = np.take_along_axis(drops, order, axis=1)
        return [[(features[j], round(value, 4)) for j, value in zip(columns, values) if value > 0]
                for columns, values in zip(order.tolist(), chosen.tolist())]

    def _score(self, name: str, batch: np.ndarray) -> Scores:
        live, shadow = self._live[name], self._shadow.get(name)  # references taken once: reload-safe
        if len(batch) == 0:
            empty = np.zeros(0, dtype=np.float32)
            return Scores(live.ref, empty, shadow.ref if shadow else None, empty if shadow else None)
        started = time.perf_counter()
        scores = live.run(batch)
        if self.observe is not None:
            self.observe(name, len(batch), time.perf_counter() - started)
        return Scores(
            version=live.ref,
            live=scores,
            shadow_version=shadow.ref if shadow else None,
            shadow=shadow.run(batch) if shadow else None,
        )
