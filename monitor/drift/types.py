"""The vocabulary of the drift engine: what to monitor, how to decide, and what comes out.

These are plain frozen dataclasses so that the engine stays pure (numpy/scipy only) and the
callers (the stream scheduler, the API, the CLI) can serialise results however they like.
Statistics and thresholds of different natures stay in differently named fields: a
``MethodResult`` of ``kind="p_value"`` compares ``p_value`` with ``threshold``; one of
``kind="distance"`` compares ``statistic`` with ``threshold``. One field never changes meaning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

ColumnKind = Literal["numerical", "categorical", "text"]
Method = Literal["ks", "wasserstein", "psi", "jensenshannon", "hellinger", "chi2", "linf"]
ThresholdMode = Literal["calibrated", "p-value", "fixed"]
Correction = Literal["holm", "bh", "none"]

NUMERICAL_METHODS: tuple[Method, ...] = ("ks", "wasserstein", "psi", "jensenshannon", "hellinger")
CATEGORICAL_METHODS: tuple[Method, ...] = ("chi2", "jensenshannon", "psi", "linf")
# Methods that are hypothesis tests and so have a p-value.
TEST_METHODS: frozenset[Method] = frozenset({"ks", "chi2"})
# Methods computed from bin or category counts alone, hence available in ``compare_counts``.
BINNED_METHODS: frozenset[Method] = frozenset({"psi", "jensenshannon", "hellinger", "chi2", "linf"})

# Evidently's defaults, for users migrating: tests are p-value thresholds (drift when
# p < threshold), the rest distance thresholds (drift when statistic >= threshold).
EVIDENTLY_THRESHOLDS: Mapping[str, float] = {
    "ks": 0.05,
    "chi2": 0.05,
    "wasserstein": 0.1,
    "psi": 0.1,
    "jensenshannon": 0.1,
    "hellinger": 0.1,
    "linf": 0.1,
}


@dataclass(frozen=True)
class ColumnSpec:
    """One monitored column. ``methods`` empty means the kind's defaults; the FIRST method
    decides whether the column ``drifted``, the others are reported beside it."""

    name: str
    kind: ColumnKind
    methods: tuple[Method, ...] = ()

    def resolved_methods(self) -> tuple[Method, ...]:
        """The methods actually run: the explicit ones, or the defaults of the kind (text
        descriptors are numerical)."""
        if self.methods:
            return self.methods
        return CATEGORICAL_METHODS if self.kind == "categorical" else NUMERICAL_METHODS


@dataclass(frozen=True)
class DriftSettings:
    """How drift is decided. ``calibrated`` (the default) estimates each statistic's null
    distribution at the current window size from the reference and flags above its upper
    ``1 - false_alarm_rate`` quantile, so the false-alarm rate does not depend on the window
    size; ``p-value`` corrects test p-values across columns (Holm or Benjamini-Hochberg);
    ``fixed`` uses ``fixed_thresholds`` over Evidently-compatible defaults."""

    threshold_mode: ThresholdMode = "calibrated"
    false_alarm_rate: float = 0.01
    alpha: float = 0.05
    correction: Correction = "holm"
    fixed_thresholds: Mapping[str, float] = field(default_factory=dict)
    n_bins: int = 20
    drift_share: float = 0.5
    min_rows: int = 100
    seed: int = 0
    # Null-distribution replicates per window size in calibrated mode.
    calibration_replicates: int = 2000
    # Threads for the per-column work; None: one per CPU.
    workers: int | None = None
    # KS p-values equal scipy's ks_2samp while n*m/(n+m) <= this; above, the Kolmogorov
    # limit with Stephens' correction (scipy's finite-n formula takes seconds at 1M rows).
    ks_exact_max_en: float = 10_000

    def __post_init__(self) -> None:
        checks = [
            ("false_alarm_rate", 0 < self.false_alarm_rate < 1, "a number in (0, 1)"),
            ("alpha", 0 < self.alpha < 1, "a number in (0, 1)"),
            ("n_bins", self.n_bins >= 2, "an integer >= 2"),
            ("drift_share", 0 < self.drift_share <= 1, "a number in (0, 1]"),
            ("min_rows", self.min_rows >= 1, "an integer >= 1"),
            ("calibration_replicates", self.calibration_replicates >= 100, "an integer >= 100"),
            ("workers", self.workers is None or self.workers >= 1, "None or an integer >= 1"),
            ("ks_exact_max_en", self.ks_exact_max_en > 0, "a positive number"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"{name}: expected {expected}, got: {getattr(self, name)!r}")
        for method in self.fixed_thresholds:
            if method not in EVIDENTLY_THRESHOLDS:
                raise ValueError(
                    f"fixed_thresholds: unknown method {method!r}; expected one of "
                    f"{sorted(EVIDENTLY_THRESHOLDS)}"
                )

    def fixed_threshold(self, method: Method) -> float:
        """The fixed threshold of ``method``: the user's, else Evidently's default."""
        return self.fixed_thresholds.get(method, EVIDENTLY_THRESHOLDS[method])


@dataclass(frozen=True)
class ColumnCounts:
    """Pre-aggregated data of one column, for SQL push-down. Numerical: ``bins`` holds the
    count per profile bin (``len(profile.bin_edges(col)) + 1`` bins; bin ``i`` holds values
    ``v`` with exactly ``i`` inner edges ``<= v``). Categorical: category -> count. Both:
    ``missing`` counts NULL/NaN values."""

    bins: np.ndarray | None = None
    categories: Mapping[str, int] | None = None
    missing: int = 0


@dataclass(frozen=True)
class ColumnQuality:
    """Data-quality signals of one column in the current window. ``out_of_range_share`` is
    the share of present values outside the reference [min, max] (numerical only);
    ``new_categories`` lists up to 50 categories unseen in the reference (sorted) and
    ``new_category_share`` the share of present values that carry one (categorical only)."""

    missing_share: float
    out_of_range_share: float | None
    new_categories: tuple[str, ...]
    new_category_share: float | None = None


@dataclass(frozen=True)
class MethodResult:
    """One method on one column. ``kind`` says what ``threshold`` is compared with:
    ``p_value`` (drift when the (adjusted) p-value < threshold) or ``distance`` (drift when
    ``statistic`` > threshold in calibrated mode, >= in fixed mode, as Evidently does)."""

    method: Method
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    kind: Literal["p_value", "distance"]
    # p-value after the multiple-testing correction across columns (p-value mode only).
    p_value_adjusted: float | None = None


@dataclass(frozen=True)
class ColumnDrift:
    """The drift of one column (text columns appear once per descriptor, named
    ``"<column>:<descriptor>"`` with ``source`` the text column). ``drifted`` follows the
    first method that could be computed; ``notes`` says which were skipped and why."""

    column: str
    kind: ColumnKind
    results: tuple[MethodResult, ...]
    drifted: bool
    quality: ColumnQuality
    source: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DriftResult:
    """The drift of one window against a reference profile."""

    status: Literal["ok", "insufficient_data"]
    n_rows: int
    columns: tuple[ColumnDrift, ...]
    drift_share: float
    dataset_drifted: bool

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        """Names of the columns that drifted, in column order."""
        return tuple(c.column for c in self.columns if c.drifted)
