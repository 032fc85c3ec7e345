"""Reducers: one score per case from ``repeats = k`` attempts of a non-deterministic model.

An attempt *passes* when its score is at least the suite's ``pass_score`` (1.0 by default,
i.e. a fully correct answer for 0/1 metrics). For a per-case metric, each reducer turns the
k attempts' scores into the case's score:

- ``mean``: the mean of the k scores (a 0/1 metric then becomes a share of attempts, so its
  aggregate interval is a bootstrap, not Wilson);
- ``majority``: the score of the majority answer (the most frequent prediction, ties to the
  one seen first);
- ``pass_at_k``: 1 if any attempt passes, else 0 (pass@k with n = k samples);
- ``at_least_k``: 1 if at least ``at_least`` attempts pass, else 0.

Corpus metrics (F1 macro, BLEU, ROC AUC, ...) need one answer per case: they score the
majority answer, except ``mean`` on a regression suite, which scores the mean prediction.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

Reducer = Literal["mean", "majority", "pass_at_k", "at_least_k"]
REDUCERS: tuple[Reducer, ...] = ("mean", "majority", "pass_at_k", "at_least_k")


def majority_index(predictions: Sequence[Any]) -> int:
    """The index of the first attempt that gave the most frequent answer."""
    keys = [_key(p) for p in predictions]
    counts = Counter(keys)
    top = max(counts.values())
    return next(i for i, key in enumerate(keys) if counts[key] == top)


def representative(predictions: Sequence[Any], reducer: Reducer, *, numeric: bool) -> Any:
    """The one answer corpus metrics score for a repeated case."""
    if reducer == "mean" and numeric:
        return math.fsum(float(p) for p in predictions) / len(predictions)
    return predictions[majority_index(predictions)]


def reduce_scores(
    scores: Sequence[float],
    reducer: Reducer,
    *,
    majority: int = 0,
    pass_score: float = 1.0,
    at_least: int | None = None,
) -> float:
    """One case's score from its attempts' ``scores`` (see the module docstring)."""
    if not scores:
        raise ValueError("cannot reduce zero attempts")
    if reducer == "mean":
        return math.fsum(scores) / len(scores)
    if reducer == "majority":
        return scores[majority]
    passed = sum(1 for s in scores if s >= pass_score)
    if reducer == "pass_at_k":
        return float(passed >= 1)
    if at_least is None:
        raise ValueError("reducer 'at_least_k' needs at_least")
    return float(passed >= at_least)


def _key(prediction: Any) -> str:
    try:
        return json.dumps(prediction, sort_keys=True)
    except (TypeError, ValueError):
        return repr(prediction)
