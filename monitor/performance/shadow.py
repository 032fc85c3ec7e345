"""Shadow comparison: how far a shadow model's predictions stray from production's.

A stream that declares ``shadow_prediction`` carries, for every record, the production
model's prediction and the shadow model's prediction for the same request. Each window
reports how often the two agree and how far apart they are:

- categorical predictions: the disagreement share (records whose two predictions differ)
  with its Wilson score interval (``scipy.stats.binomtest(...).proportion_ci``, which
  keeps its coverage near a share of 0 or 1, where the normal interval collapses);
- numerical predictions: the paired differences ``shadow - prediction``: their mean with
  the paired t interval and the paired t-test's p-value (``scipy.stats.ttest_rel``), and
  the agreement rate as the share of records within ``tolerance`` of each other.

Only records carrying both predictions are paired; fewer than ``min_pairs`` pairs give
status ``insufficient_data`` and no figures. Pure: numpy and scipy; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

Kind = Literal["numerical", "categorical"]
Status = Literal["ok", "insufficient_data"]
Measure = Literal["disagreement_share", "mean_difference"]

__all__ = ["Divergence", "ShadowComparison", "compare_shadow"]


@dataclass(frozen=True, slots=True)
class Divergence:
    """One measure of divergence with its interval at the comparison's confidence.
    ``p_value`` is the paired test's (mean difference only: H0 no mean difference)."""

    measure: Measure
    value: float
    lower: float
    upper: float
    p_value: float | None = None


@dataclass(frozen=True, slots=True)
class ShadowComparison:
    """A window's shadow comparison: ``n_pairs`` records with both predictions, the share
    on which they agree, and the divergence measure of the predictions' kind."""

    kind: Kind
    status: Status
    n_rows: int
    n_pairs: int
    agreement: float | None = None
    divergence: Divergence | None = None
    mean_abs_difference: float | None = None
    confidence: float = 0.95

    def to_json(self) -> dict[str, Any]:
        """The stored form: plain numbers, a non-finite one as null."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "status": self.status,
            "n_rows": self.n_rows,
            "n_pairs": self.n_pairs,
            "confidence": self.confidence,
            "agreement": _finite(self.agreement),
            "divergence": None,
        }
        if self.kind == "numerical":
            out["mean_abs_difference"] = _finite(self.mean_abs_difference)
        d = self.divergence
        if d is not None:
            out["divergence"] = {
                "measure": d.measure,
                "value": _finite(d.value),
                "lower": _finite(d.lower),
                "upper": _finite(d.upper),
                "p_value": _finite(d.p_value),
                "interval": "wilson" if d.measure == "disagreement_share" else "paired-t",
            }
        return out


def compare_shadow(
    kind: Kind,
    predictions: Sequence[Any],
    shadow: Sequence[Any],
    *,
    min_pairs: int = 30,
    tolerance: float = 0.0,
    confidence: float = 0.95,
) -> ShadowComparison:
    """Compare ``shadow`` with ``predictions`` record by record (``None``: missing)."""
    pairs = [(p, s) for p, s in zip(predictions, shadow, strict=True) if _present(p, s)]
    n_rows, n = len(predictions), len(pairs)
    if n < min_pairs or n == 0:
        return ShadowComparison(kind, "insufficient_data", n_rows, n, confidence=confidence)
    if kind == "categorical":
        return _categorical(pairs, n_rows, confidence)
    return _numerical(pairs, n_rows, tolerance, confidence)


def _categorical(pairs: list[tuple[Any, Any]], n_rows: int, confidence: float) -> ShadowComparison:
    n = len(pairs)
    differ = sum(1 for p, s in pairs if str(p) != str(s))
    interval = stats.binomtest(differ, n).proportion_ci(confidence, method="wilson")
    divergence = Divergence(
        "disagreement_share", differ / n, float(interval.low), float(interval.high)
    )
    return ShadowComparison(
        "categorical", "ok", n_rows, n, 1.0 - differ / n, divergence, confidence=confidence
    )


def _numerical(
    pairs: list[tuple[Any, Any]], n_rows: int, tolerance: float, confidence: float
) -> ShadowComparison:
    production = np.asarray([float(p) for p, _ in pairs])
    candidate = np.asarray([float(s) for _, s in pairs])
    difference = candidate - production
    mean = float(difference.mean())
    if np.all(difference == difference[0]):
        # No spread: the t statistic is undefined, and the difference is known exactly.
        lower = upper = mean
        p_value: float | None = 1.0 if mean == 0.0 else 0.0
    else:
        test = stats.ttest_rel(candidate, production)
        interval = test.confidence_interval(confidence)
        lower, upper, p_value = float(interval.low), float(interval.high), float(test.pvalue)
    agree = float(np.mean(np.abs(difference) <= tolerance))
    return ShadowComparison(
        "numerical",
        "ok",
        n_rows,
        len(pairs),
        agree,
        Divergence("mean_difference", mean, lower, upper, p_value),
        float(np.mean(np.abs(difference))),
        confidence,
    )


def _present(prediction: Any, shadow: Any) -> bool:
    for value in (prediction, shadow):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
    return True


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)
