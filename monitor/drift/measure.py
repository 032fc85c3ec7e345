"""Measuring one column of a window: statistics and quality signals, before any decision.

Each numerical column is sorted once; every method then reads the sorted window: bin counts
by ``np.searchsorted`` on the profile's edges, KS and Wasserstein by one merge with the
stored sorted reference, the out-of-range share by two more searches. Nothing about the
reference is recomputed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from monitor.drift import stats
from monitor.drift.profile import (
    CategoricalProfile,
    NumericalProfile,
    bin_counts,
    category_counts,
    present_sorted,
)
from monitor.drift.types import BINNED_METHODS, ColumnKind, ColumnQuality, Method

# At most this many unseen categories are listed by name.
MAX_NEW_CATEGORIES = 50


@dataclass(frozen=True)
class Measured:
    """The statistics of one column before thresholds are applied."""

    column: str
    kind: ColumnKind
    size: int  # present values in the window
    values: tuple[tuple[Method, float, float | None], ...]  # method, statistic, p-value
    quality: ColumnQuality
    source: str | None = None
    notes: tuple[str, ...] = ()


def numerical(
    name: str,
    num: NumericalProfile,
    values: np.ndarray,
    methods: Sequence[Method],
    source: str | None = None,
    ks_exact_max_en: float = 10_000,
) -> Measured:
    """Measure a numerical column (or text descriptor) from raw values."""
    cur, missing = present_sorted(values)
    m = cur.size
    total = m + missing
    if m == 0:
        quality = ColumnQuality(_share(missing, total), None, ())
        return Measured(name, "numerical", 0, (), quality, source, ("no present values",))
    outside = np.searchsorted(cur, num.sorted_values[0], side="left") + (
        m - np.searchsorted(cur, num.sorted_values[-1], side="right")
    )
    quality = ColumnQuality(_share(missing, total), float(outside) / m, ())
    results: list[tuple[Method, float, float | None]] = []
    ks_w: tuple[float, float] | None = None
    binned: tuple[np.ndarray, np.ndarray] | None = None
    for method in methods:
        if method in ("ks", "wasserstein"):
            if ks_w is None:
                ks_w = stats.ks_wasserstein(num.sorted_values, cur)
            if method == "ks":
                p = stats.ks_pvalue(ks_w[0], num.sorted_values, cur, ks_exact_max_en)
                results.append(("ks", ks_w[0], p))
            else:
                results.append(
                    ("wasserstein", stats.normalised_wasserstein(ks_w[1], num.std), None)
                )
            continue
        if binned is None:
            binned = (num.bins(), bin_counts(cur, num.edges))
        results.append(_binned(method, *binned))
    return Measured(name, "numerical", m, tuple(results), quality, source)


def numerical_counts(
    name: str,
    num: NumericalProfile,
    bins: np.ndarray,
    missing: int,
    methods: Sequence[Method],
    source: str | None = None,
) -> Measured:
    """Measure a numerical column from counts per profile bin (SQL push-down). KS and
    Wasserstein need raw values: they are skipped, with a note."""
    cur_bins = np.asarray(bins, dtype=np.int64)
    expected = num.edges.size + 1
    if cur_bins.shape != (expected,):
        raise ValueError(
            f"counts[{name!r}].bins: expected {expected} bin counts, got shape {cur_bins.shape}"
        )
    m = int(cur_bins.sum())
    quality = ColumnQuality(_share(missing, m + missing), None, ())
    notes = tuple(
        f"{method}: needs raw values, not computed from bin counts"
        for method in methods
        if method not in BINNED_METHODS
    )
    if m == 0:
        return Measured(name, "numerical", 0, (), quality, source, (*notes, "no present values"))
    ref_bins = num.bins()
    values = tuple(
        _binned(method, ref_bins, cur_bins) for method in methods if method in BINNED_METHODS
    )
    return Measured(name, "numerical", m, values, quality, source, notes)


def categorical(
    name: str,
    cat: CategoricalProfile,
    values: np.ndarray | Sequence[object],
    methods: Sequence[Method],
) -> Measured:
    """Measure a categorical column from raw values."""
    counts, missing = category_counts(values)
    return categorical_counts(name, cat, counts, missing, methods)


def categorical_counts(
    name: str,
    cat: CategoricalProfile,
    counts: Mapping[str, int],
    missing: int,
    methods: Sequence[Method],
) -> Measured:
    """Measure a categorical column from category counts. Categories unseen in the
    reference share one extra bucket (reference count 0) and are reported by name."""
    known = set(cat.categories)
    new = {str(k): int(v) for k, v in counts.items() if str(k) not in known and int(v) > 0}
    cur = np.array([int(counts.get(c, 0)) for c in cat.categories] + [sum(new.values())])
    m = int(cur.sum())
    names = tuple(sorted(new)[:MAX_NEW_CATEGORIES])
    new_share = _share(sum(new.values()), m) if m else None
    quality = ColumnQuality(_share(missing, m + missing), None, names, new_share)
    if m == 0:
        return Measured(name, "categorical", 0, (), quality, None, ("no present values",))
    ref = np.append(cat.counts, 0)
    values = tuple(_binned(method, ref, cur) for method in methods)
    return Measured(name, "categorical", m, values, quality)


def _binned(method: Method, ref: np.ndarray, cur: np.ndarray) -> tuple[Method, float, float | None]:
    statistic = float(stats.BINNED[method](ref[None, :], cur[None, :])[0])
    p_value = stats.chi2_pvalue(ref, cur, statistic) if method == "chi2" else None
    return method, statistic, p_value


def _share(part: int, total: int) -> float:
    return float(part) / total if total else 0.0
