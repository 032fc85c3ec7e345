"""Cost of scoring one stream window's realized performance, at 10k and 1M labelled rows.

Same seeded binary-classification data for both sides, in one run: ``--rows`` records
with a prediction (85% right), a label and a positive-class probability. Ours is what
the daemon does per window: ``monitor.performance.measure`` with the default
classification metrics plus ROC AUC and log loss (accuracy, macro precision, recall, F1),
each with its 95% interval (Wilson for accuracy; the seeded bootstrap for the others,
on a subsample of ``interval_rows`` = 20,000 above that), and ``judge`` against a
reference of 20,000 records. The peer is bare scikit-learn computing the same six values
once, without any interval or test: the floor a per-window metric job pays. Reported:
seconds per window (median of ``--repeat``) and the ratio ours / scikit-learn.

Usage: python bench/performance_window.py --rows 10000 --rows 1000000 [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
from sklearn import metrics as skm

from monitor.performance import judge, measure

METRICS: list[Any] = [
    "accuracy",
    "precision",
    "recall",
    "f1",
    {"name": "roc-auc", "positive": "1"},
    {"name": "log-loss", "positive": "1"},
]


def data(n: int, seed: int) -> tuple[list[str], list[str], list[float]]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    predicted = np.where(rng.random(n) < 0.85, truth, 1 - truth)
    proba = np.clip(0.5 + (truth - 0.5) * 0.6 + rng.normal(0, 0.25, n), 0.01, 0.99)
    return predicted.astype(str).tolist(), truth.astype(str).tolist(), proba.tolist()


def ours(p: list[str], y: list[str], s: list[float], reference: Any) -> float:
    start = time.perf_counter()
    window = measure("classification", p, y, s, metrics=METRICS)
    judge(window, reference, alpha=0.05)
    return time.perf_counter() - start


def sklearn_only(p: list[str], y: list[str], s: list[float]) -> float:
    start = time.perf_counter()
    truth, predicted, proba = np.array(y), np.array(p), np.array(s)
    positive = truth == "1"
    skm.accuracy_score(truth, predicted)
    for function in (skm.precision_score, skm.recall_score, skm.f1_score):
        function(truth, predicted, average="macro")
    skm.roc_auc_score(positive, proba)
    skm.log_loss(positive, proba)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", default=[])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    reference = measure("classification", *data(20_000, seed=0), metrics=METRICS)
    print(f"{'rows':>9} {'ours s':>9} {'sklearn s':>10} {'ratio':>7}")
    for n in args.rows or [10_000, 1_000_000]:
        p, y, s = data(n, seed=n)
        ours(p, y, s, reference)  # warm: first calls into scipy and scikit-learn
        mine = statistics.median(ours(p, y, s, reference) for _ in range(args.repeat))
        peer = statistics.median(sklearn_only(p, y, s) for _ in range(args.repeat))
        print(f"{n:>9} {mine:>9.2f} {peer:>10.3f} {mine / peer:>7.1f}")


if __name__ == "__main__":
    main()
