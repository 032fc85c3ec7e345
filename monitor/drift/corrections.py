"""Multiple-testing corrections of p-values across columns.

With 50 columns tested at 5% each, about two and a half columns "drift" in every window of
unchanged data. Holm controls the family-wise error rate (the chance of any false alarm);
Benjamini-Hochberg controls the false discovery rate (the expected share of false alarms
among the columns flagged), which keeps more power when many columns really drift.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from monitor.drift.types import Correction


def adjust(p_values: Sequence[float], correction: Correction) -> list[float]:
    """Adjusted p-values, in the input order; compare them with the unadjusted alpha."""
    p = np.asarray(p_values, dtype=np.float64)
    if correction == "none" or p.size == 0:
        return [float(v) for v in p]
    if correction == "holm":
        return [float(v) for v in holm(p)]
    return [float(v) for v in benjamini_hochberg(p)]


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment: the i-th smallest p-value times (k - i), made
    monotone by a running maximum, capped at 1."""
    k = p.size
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (k - np.arange(k))
    adjusted = np.minimum(np.maximum.accumulate(scaled), 1.0)
    out = np.empty(k)
    out[order] = adjusted
    return out


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg step-up adjustment: the i-th smallest p-value times k / i, made
    monotone by a running minimum from the largest, capped at 1."""
    k = p.size
    order = np.argsort(p, kind="stable")
    scaled = p[order] * k / np.arange(1, k + 1)
    adjusted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    out = np.empty(k)
    out[order] = adjusted
    return out
