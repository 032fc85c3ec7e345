"""From paired tests to outcomes: ``regressed``, ``improved``, ``pass`` or ``inconclusive``.

A metric regresses when it breaches its floor, or when it dropped by more than
``max_drop`` and the drop is significant: a one-sided test in the worse direction, after
Holm's correction over every metric and slice of the verdict (improvements are tested
the same way in the other direction).

It is inconclusive when nothing is significant but a drop of the
smallest size that matters is still inside the 95% interval: then the verdict says how
many paired cases would settle it. Pure: no I/O.

Each verdict carries the one-sided bound of the change that goes with its one-sided test
(at ``1 - alpha``): the bound of "worse" (an upper bound of new - baseline when higher is
better), or of "better" for an improvement. A regressed or improved metric's bound is
beyond zero; it is the number to show next to the one-sided p-value.

A binary judge metric with the judge's measured sensitivity and specificity is judged on
the corrected scale (Rogan & Gladen 1978): see :class:`Correction`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from monitor.records import JUDGE_CORRECTED
from monitor.verdicts.stats import (
    PairedTest,
    cases_needed_binary,
    cases_needed_continuous,
    holm,
    mcnemar_exact,
    paired_bootstrap,
)

Outcome = Literal["regressed", "improved", "pass", "inconclusive"]
ScoreKind = Literal["binary", "continuous", "aggregate"]
BoundSide = Literal["upper", "lower"]


@dataclass(frozen=True, slots=True)
class Policy:
    """How one metric is judged. ``max_drop`` and ``min_effect`` are absolute, or a share of
    the baseline value when ``relative``. ``minimum`` is a floor (a ceiling when lower is
    better) that regresses whatever the statistics say."""

    direction: Literal["higher", "lower"] = "higher"
    minimum: float | None = None
    max_drop: float = 0.0
    relative: bool = False
    alpha: float = 0.05
    min_effect: float | None = None


@dataclass(frozen=True, slots=True)
class Correction:
    """A binary judge's measured error rates. Each case's judged 0/1 score ``s`` stands for
    the corrected score ``(s + specificity - 1) / J``, ``J = sensitivity + specificity - 1``
    (Youden's index), whose mean is the Rogan-Gladen estimate of the true share (Rogan &
    Gladen 1978, Am. J. Epidemiol. 107:71-76). The map is affine and increasing, so the
    paired test runs on the judged scores and its numbers are mapped after: both runs'
    values through it, every difference, interval end and bound divided by ``J``, the
    p-values and the counts of changed cases untouched (a test of "no difference" on the
    corrected scores is the same test). Tolerances, floors, effects and the cases needed
    are then on the true scale."""

    sensitivity: float
    specificity: float

    @property
    def youden(self) -> float:
        return self.sensitivity + self.specificity - 1

    def value(self, judged: float) -> float:
        """The corrected share from a judged one; unclipped, so that new - baseline stays
        the corrected delta (outside [0, 1] only when the rates do not fit the data)."""
        return (judged + self.specificity - 1) / self.youden

    def describe(self) -> str:
        return (
            f"{JUDGE_CORRECTED}, sensitivity {self.sensitivity:g},"
            f" specificity {self.specificity:g})"
        )


@dataclass(frozen=True, slots=True)
class Comparison:
    """The paired scores of one metric (optionally one slice) in both runs."""

    metric: str
    kind: ScoreKind
    baseline: Mapping[str, float]
    new: Mapping[str, float]
    slice: str = ""
    statistic: Callable[[np.ndarray], float] | None = None
    correction: Correction | None = None
    """The judge's error rates, for a judge metric that gives them."""


@dataclass(frozen=True, slots=True)
class MetricVerdict:
    metric: str
    slice: str
    outcome: Outcome
    test: PairedTest
    p_adjusted: float  # one-sided, in the direction of the outcome it supports, Holm-adjusted
    margin: float
    reason: str
    cases_needed: int | None = None
    unpaired: int = 0
    bound_side: BoundSide = "upper"
    """Which one-sided bound of ``test`` goes with ``p_adjusted``: ``upper`` (new - baseline
    is at most ``test.upper_bound``) or ``lower`` (at least ``test.lower_bound``)."""

    @property
    def bound(self) -> float:
        """The one-sided bound of the change at ``1 - test.alpha`` that the test used."""
        return self.test.upper_bound if self.bound_side == "upper" else self.test.lower_bound


def judge(
    comparisons: Sequence[Comparison],
    policies: Mapping[str, Policy],
    *,
    seed: int = 0,
    resamples: int = 2000,
) -> list[MetricVerdict]:
    """One verdict per comparison, with Holm's correction across all of them."""
    chosen = [policies.get(c.metric, Policy()) for c in comparisons]
    tests = [_test(c, seed, resamples, p.alpha) for c, p in zip(comparisons, chosen, strict=True)]
    worse = holm([_p_worse(t, p) for t, p in zip(tests, chosen, strict=True)])
    better = holm([_p_worse(t, p, flip=True) for t, p in zip(tests, chosen, strict=True)])
    return [
        _decide(c, t, pw, pb, policy)
        for c, t, pw, pb, policy in zip(comparisons, tests, worse, better, chosen, strict=True)
    ]


def _p_worse(test: PairedTest, policy: Policy, *, flip: bool = False) -> float:
    return test.p_less if _side(policy, flip=flip) == "upper" else test.p_greater


def _side(policy: Policy, *, flip: bool = False) -> BoundSide:
    """The bound that goes with the test of "worse" (``flip``: of "better"): testing "new
    is lower" bounds the change from above."""
    lower_is_worse = (policy.direction == "higher") != flip
    return "upper" if lower_is_worse else "lower"


def overall(verdicts: Sequence[MetricVerdict]) -> Outcome:
    """The verdict of a run: regressed if any metric regressed, overall or in any slice;
    else inconclusive if an overall metric is; else improved if an overall metric
    improved; else pass. A small slice that cannot tell does not make the whole run
    inconclusive, but a slice that collapsed makes it regressed."""
    if any(v.outcome == "regressed" for v in verdicts):
        return "regressed"
    outcomes = {v.outcome for v in verdicts if not v.slice}
    for outcome in ("inconclusive", "improved"):
        if outcome in outcomes:
            return outcome
    return "pass"


def _test(c: Comparison, seed: int, resamples: int, alpha: float) -> PairedTest:
    ids = sorted(set(c.baseline) & set(c.new))
    base = [c.baseline[i] for i in ids]
    new = [c.new[i] for i in ids]
    if c.kind == "binary":
        test = mcnemar_exact(base, new, alpha=alpha)
    else:
        test = paired_bootstrap(
            base, new, statistic=c.statistic, seed=seed, resamples=resamples, alpha=alpha
        )
    return test if c.correction is None else _corrected(test, c.correction)


def _corrected(t: PairedTest, k: Correction) -> PairedTest:
    """``t`` on the corrected scale (see :class:`Correction`); differences stay in [-1, 1]."""

    def diff(x: float) -> float:
        return min(1.0, max(-1.0, x / k.youden))

    return replace(
        t,
        baseline=k.value(t.baseline),
        new=k.value(t.new),
        delta=t.delta / k.youden,
        lower=diff(t.lower),
        upper=diff(t.upper),
        lower_bound=diff(t.lower_bound),
        upper_bound=diff(t.upper_bound),
    )


def _decide(
    c: Comparison, t: PairedTest, p_worse: float, p_better: float, policy: Policy
) -> MetricVerdict:
    verdict = _outcome(c, t, p_worse, p_better, policy)
    if c.correction is None:
        return verdict
    return replace(verdict, reason=f"{verdict.reason}; {c.correction.describe()}")


def _outcome(
    c: Comparison, t: PairedTest, p_worse: float, p_better: float, policy: Policy
) -> MetricVerdict:
    sign = 1.0 if policy.direction == "higher" else -1.0
    gain, worst = sign * t.delta, min(sign * t.lower, sign * t.upper)
    scale = abs(t.baseline) if policy.relative else 1.0
    margin = policy.max_drop * scale
    unpaired = len(set(c.baseline) ^ set(c.new))
    verdict = MetricVerdict(
        c.metric, c.slice, "pass", t, p_worse, margin, "", None, unpaired, _side(policy)
    )
    # The floor is the metric's, overall: a slice is judged against its own baseline only.
    if policy.minimum is not None and not c.slice and sign * (t.new - policy.minimum) < 0:
        bound = "floor" if sign > 0 else "ceiling"
        return replace(
            verdict,
            outcome="regressed",
            reason=f"{t.new:.4g} breaches the {bound} {policy.minimum:g}",
        )
    if p_worse < policy.alpha and -gain > margin:
        reason = f"dropped {-gain:.4g} (p={p_worse:.3g}), beyond {margin:.4g}"
        return replace(verdict, outcome="regressed", reason=reason)
    if p_better < policy.alpha and gain > 0:
        reason = f"gained {gain:.4g} (p={p_better:.3g})"
        better = _side(policy, flip=True)
        return replace(
            verdict, outcome="improved", p_adjusted=p_better, reason=reason, bound_side=better
        )
    effect = max(margin, _min_effect(c, t, policy))
    if worst < -effect:
        needed = _cases_needed(c, t, effect)
        return replace(
            verdict,
            outcome="inconclusive",
            cases_needed=needed,
            reason=f"a drop of {effect:.4g} is not ruled out with {t.n} cases;"
            f" about {needed} would tell",
        )
    return replace(verdict, reason=f"change {gain:+.4g} within tolerance (p={p_worse:.3g})")


def _min_effect(c: Comparison, t: PairedTest, policy: Policy) -> float:
    if policy.min_effect is not None:
        return policy.min_effect * (abs(t.baseline) if policy.relative else 1.0)
    # The smallest change worth telling apart: 5 points of a pass rate, else 5% of the value.
    return 0.05 if c.kind == "binary" else 0.05 * abs(t.baseline) or 0.05


def _cases_needed(c: Comparison, t: PairedTest, effect: float) -> int:
    # The tests run on the judged scores, where a true effect e is a judged one of J e.
    if c.correction is not None:
        effect *= c.correction.youden
    if c.kind == "binary" and t.degraded is not None and t.improved is not None:
        return cases_needed_binary((t.degraded + t.improved) / t.n, effect)
    ids = sorted(set(c.baseline) & set(c.new))
    diffs = np.array([c.new[i] - c.baseline[i] for i in ids])
    sd = float(diffs.std(ddof=1)) if len(diffs) > 1 else 0.0
    return cases_needed_continuous(sd or effect, effect)
