"""Verdicts: a run judged against its baseline, metric by metric.

``compare``, ``decide`` and ``stats`` are pure computation (numpy, scipy); ``service``
finds the baseline in the store, judges a run and stores the verdict.

May import: the shared vocabulary, ``config``, ``scoring`` and (``service`` only)
``store``.
"""

from __future__ import annotations

from monitor.verdicts.decide import (
    Comparison,
    Correction,
    MetricVerdict,
    Outcome,
    Policy,
    judge,
    overall,
)
from monitor.verdicts.stats import (
    PairedTest,
    agresti_min_interval,
    cases_needed_binary,
    cases_needed_continuous,
    holm,
    mcnemar_exact,
    paired_bootstrap,
    wilcoxon,
)

__all__ = [
    "Comparison",
    "Correction",
    "MetricVerdict",
    "Outcome",
    "PairedTest",
    "Policy",
    "agresti_min_interval",
    "cases_needed_binary",
    "cases_needed_continuous",
    "holm",
    "judge",
    "mcnemar_exact",
    "overall",
    "paired_bootstrap",
    "wilcoxon",
]
