"""The drift engine: is production data still like the reference data?

Pure computation (numpy and scipy only, no I/O). Build a ``ReferenceProfile`` once from the
reference data with ``build_profile``, store it with ``to_bytes``, and compare each window
with ``compare`` (raw values) or ``compare_counts`` (bin and category counts pushed down to
a database). Numerical columns get KS, normalised Wasserstein, PSI, Jensen-Shannon and
Hellinger on reference-quantile bins; categorical columns a chi-square test of homogeneity,
Jensen-Shannon, PSI and L-infinity; text columns are compared through descriptors.

May import: numpy and scipy only; no other ``monitor`` package.
"""

from __future__ import annotations

from monitor.drift.compare import compare, compare_counts
from monitor.drift.corrections import adjust, benjamini_hochberg, holm
from monitor.drift.profile import ReferenceProfile, build_profile
from monitor.drift.text import DESCRIPTORS
from monitor.drift.types import (
    CATEGORICAL_METHODS,
    EVIDENTLY_THRESHOLDS,
    NUMERICAL_METHODS,
    ColumnCounts,
    ColumnDrift,
    ColumnKind,
    ColumnQuality,
    ColumnSpec,
    Correction,
    DriftResult,
    DriftSettings,
    Method,
    MethodResult,
    ThresholdMode,
)

__all__ = [
    "CATEGORICAL_METHODS",
    "DESCRIPTORS",
    "EVIDENTLY_THRESHOLDS",
    "NUMERICAL_METHODS",
    "ColumnCounts",
    "ColumnDrift",
    "ColumnKind",
    "ColumnQuality",
    "ColumnSpec",
    "Correction",
    "DriftResult",
    "DriftSettings",
    "Method",
    "MethodResult",
    "ReferenceProfile",
    "ThresholdMode",
    "adjust",
    "benjamini_hochberg",
    "build_profile",
    "compare",
    "compare_counts",
    "holm",
]
