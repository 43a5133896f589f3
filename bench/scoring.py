"""Scorer latency and throughput per model and batch size, beside bare onnxruntime.

    .venv/bin/python bench/scoring.py [--seconds 1.0]

For each model and batch size (1, 16, 64, 256), the carewatch scorer and a
bare `InferenceSession.run` on the same inputs, one thread each, alternating
in the same process. Inputs are synthetic (simulator text, simulator
feature vectors). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import onnxruntime

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import pct  # noqa: E402
from models.features import PersonFeatures  # noqa: E402
from models.scoring import Scorer  # noqa: E402
from models.simulator import CohortConfig, simulate  # noqa: E402

SIZES = (1, 16, 64, 256)


def inputs(n: int) -> tuple[list[str], list[list[float]]]:
    texts, rows = [], []
    people: dict[str, PersonFeatures] = {}
    for event in simulate(CohortConfig(people=60, days=60, seed=31)).events():
        kind = event["type"].split(".")[2]
        if kind == "consent":
            continue
        when = datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()
        person = people.setdefault(event["subject"], PersonFeatures())
        person.observe(kind, event["data"], when)
        rows.append(person.vector(when))
        if kind == "text":
            texts.append(event["data"]["text"])
    random.Random(1).shuffle(rows)
    return texts[:n], rows[:n]


def timed(call, seconds: float) -> list[float]:
    durations = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(durations) < 20:
        started = time.perf_counter()
        call()
        durations.append(time.perf_counter() - started)
    return durations



def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    scorer = Scorer(threads=1)
    texts, rows = inputs(max(SIZES))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    print("| model | batch | scorer µs/call median | p99 | µs/event | events/s | bare ORT µs/call median | p99 "
          "| scorer / bare |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in ("text-risk", "deviation"):
        card = scorer.card(name)
        bare = onnxruntime.InferenceSession(str(card.path), options, providers=["CPUExecutionProvider"])
        for size in SIZES:
            if name == "text-risk":
                batch = texts[:size]
                array = np.asarray(batch, dtype=object).reshape(-1, 1)
                ours = lambda: scorer.text_risk(batch)  # noqa: E731
            else:
                batch = rows[:size]
                array = np.asarray(batch, dtype=np.float32)
                ours = lambda: scorer.deviation(batch)  # noqa: E731
            theirs = lambda: bare.run(["probabilities"], {bare.get_inputs()[0].name: array})  # noqa: E731
            a, b = [], []
            for _ in range(3):  # alternate, so drift on a shared machine hits both
                a += timed(ours, args.seconds / 3)
                b += timed(theirs, args.seconds / 3)
            ma, mb = statistics.median(a), statistics.median(b)
            print(f"| {card.ref} | {size} | {ma * 1e6:,.0f} | {pct(a, 0.99) * 1e6:,.0f} | {ma * 1e6 / size:,.1f} | "
                  f"{size / ma:,.0f} | {mb * 1e6:,.0f} | {pct(b, 0.99) * 1e6:,.0f} | {ma / mb:.2f} |")
    explain = [True] * 64
    a = timed(lambda: scorer.deviation(rows[:64], explain=explain), args.seconds)
    b = timed(lambda: scorer.deviation(rows[:64]), args.seconds)
    print(f"\ndeviation with explanations for all 64 rows: median {statistics.median(a) * 1e6:,.0f} µs/call, "
          f"p99 {pct(a, 0.99) * 1e6:,.0f}; {statistics.median(a) / statistics.median(b):.1f}x the plain call")


if __name__ == "__main__":
    main()
