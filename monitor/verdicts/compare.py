"""A run's cases against its baseline's cases: comparisons, verdicts and the per-case diff.

Pure: it takes the stored case results of both runs and the suite's settings, pairs cases
by id (a case that failed at the endpoint in either run is left unpaired and counted), and
hands every metric, overall and per slice value, to :func:`monitor.verdicts.judge`, whose
Holm correction covers all of them.

- per-case pass/fail metrics (accuracy, exact match): exact McNemar;
- per-case continuous metrics (token F1, ROUGE): seeded paired bootstrap of the mean;
- corpus metrics (macro F1, ROC AUC, BLEU, MAE): seeded paired bootstrap over cases,
  recomputing the metric on both runs' resampled cases. Both runs' answers are laid end to
  end, so one metric statistic over case indices serves both sides: the baseline's case
  ``i`` is index ``i``, the new run's is ``n + i``.
- ``pairwise`` judge metrics (already a comparison with the baseline's answers): the
  sign test on wins and losses, as McNemar's exact test on wins and losses laid out as
  paired 0/1 scores;
- ``latency``, ``tokens`` and ``cost`` per case, when the suite's verdict names them.

A binary judge metric given its judge's ``sensitivity`` and ``specificity`` is judged on
the Rogan-Gladen corrected scale (:class:`monitor.verdicts.decide.Correction`): its
values, delta, interval, tolerance, floor and cases needed are the true share's, its
p-values those of the test on the judged scores.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from monitor.config.suites import OPERATIONAL, MetricPolicyConfig, SuiteConfig, VerdictConfig
from monitor.records import CaseChange, CaseResult, MetricComparison
from monitor.scoring.base import Metric, PerCaseMetric
from monitor.scoring.judged import JudgeMetric, Pairwise
from monitor.scoring.operations import Price
from monitor.verdicts.decide import (
    Comparison,
    Correction,
    MetricVerdict,
    Policy,
    judge,
    overall,
)

CLIP = 200
"""Characters of an input, expected value or prediction kept in a case diff."""


@dataclass(frozen=True, slots=True)
class Judgement:
    """What a comparison concluded: the outcome, a one-line reason, every metric row and
    the cases that changed."""

    outcome: str
    reason: str
    metrics: list[MetricComparison]
    changes: list[CaseChange]


def compare_cases(
    suite: SuiteConfig,
    baseline: Sequence[CaseResult],
    new: Sequence[CaseResult],
    *,
    price: Price | None = None,
) -> Judgement:
    """Judge ``new`` against ``baseline`` with the suite's metrics and verdict settings."""
    settings = suite.verdict
    base_ok = {c.case_id: c for c in baseline if c.error_kind is None}
    new_ok = {c.case_id: c for c in new if c.error_kind is None}
    paired = sorted(set(base_ok) & set(new_ok))
    if not paired:
        raise ValueError(
            f"no case answered in both runs ({len(base_ok)} answered in the baseline,"
            f" {len(new_ok)} in the new run, none with the same id)"
        )
    metrics = suite.build_metrics()
    policies = _policies(metrics, settings)
    comparisons, skipped = _comparisons(
        metrics, settings, base_ok, new_ok, _groups(suite, base_ok, new_ok, paired), price
    )
    if not comparisons:
        raise ValueError("no metric could be compared: " + "; ".join(skipped))
    verdicts = judge(comparisons, policies, seed=settings.seed, resamples=settings.resamples)
    unpaired = len(set(base_ok) ^ set(new_ok))
    rows = [_row(v, unpaired if not v.slice else v.unpaired) for v in verdicts]
    outcome = overall(verdicts)
    return Judgement(
        outcome,
        _reason(outcome, verdicts, len(paired), unpaired, skipped),
        rows,
        _changes(metrics, policies, base_ok, new_ok, paired, settings.changes),
    )


def _policies(metrics: Sequence[Metric], settings: VerdictConfig) -> dict[str, Policy]:
    """Each metric's policy, and those of the operational measures the suite judges."""
    policies = {m.label: _policy(settings.metrics.get(m.label), m, settings.alpha) for m in metrics}
    for name in OPERATIONAL:
        if name in settings.metrics:
            policies[name] = _policy(settings.metrics[name], None, settings.alpha)
    return policies


def _comparisons(
    metrics: Sequence[Metric],
    settings: VerdictConfig,
    base: Mapping[str, CaseResult],
    new: Mapping[str, CaseResult],
    groups: Sequence[tuple[str, list[str]]],
    price: Price | None,
) -> tuple[list[Comparison], list[str]]:
    """Every metric (and judged operational measure) in every group of cases, and what
    could not be compared, with why."""
    comparisons: list[Comparison] = []
    skipped: list[str] = []
    for slice_name, ids in groups:
        for metric in metrics:
            try:
                comparisons.append(_comparison(metric, base, new, ids, slice_name))
            except ValueError as exc:
                skipped.append(f"{metric.label}{f' [{slice_name}]' if slice_name else ''}: {exc}")
        for name in OPERATIONAL:
            if name in settings.metrics:
                values = _operational(name, base, new, ids, price)
                if values is not None:
                    comparisons.append(Comparison(name, "continuous", *values, slice=slice_name))
                elif not slice_name:
                    skipped.append(f"{name}: not known for every paired case")
    return comparisons, skipped


def _policy(config: MetricPolicyConfig | None, metric: Metric | None, alpha: float) -> Policy:
    higher = metric.higher_is_better if metric is not None else False
    direction: Literal["higher", "lower"] = "higher" if higher else "lower"
    if config is None:
        return Policy(direction=direction, alpha=alpha)
    max_drop, relative = _amount(config.max_drop)
    min_effect = None if config.min_effect is None else _amount(config.min_effect)[0]
    return Policy(
        direction=config.direction or direction,
        minimum=config.min,
        max_drop=max_drop,
        relative=relative,
        alpha=config.alpha or alpha,
        min_effect=min_effect,
    )


def _amount(value: float | str) -> tuple[float, bool]:
    if isinstance(value, str):
        return float(value.strip()[:-1]) / 100, True
    return float(value), False


def _pairwise(
    label: str, new: Mapping[str, CaseResult], ids: Sequence[str], slice_name: str
) -> Comparison:
    """A ``pairwise`` metric already compares the run with its baseline, case by case:
    a win (1), tie (0.5) or loss (0). Laid out as paired 0/1 scores, a win is a case the
    new run "passes" and the baseline does not, a loss the reverse, a tie the same score
    in both, so McNemar's exact test on them is the sign test on wins and losses (scipy's
    ``binomtest`` over the untied cases). Its "baseline" is the loss rate, its "new" the
    win rate."""
    present = [i for i in ids if label in new[i].scores]
    if not present:
        raise ValueError("no paired case has this score")
    outcome = {i: float(new[i].scores[label]) for i in present}
    base = {i: float(v < 0.5) for i, v in outcome.items()}
    wins = {i: float(v > 0.5) for i, v in outcome.items()}
    return Comparison(label, "binary", base, wins, slice=slice_name)


def _groups(
    suite: SuiteConfig,
    base: Mapping[str, CaseResult],
    new: Mapping[str, CaseResult],
    paired: list[str],
) -> list[tuple[str, list[str]]]:
    """The overall group, then one group per slice value with enough paired cases. A case
    belongs to the slice its baseline run recorded (the same input in both runs)."""
    groups: list[tuple[str, list[str]]] = [("", paired)]
    for field in suite.slices:
        members: dict[str, list[str]] = {}
        for case_id in paired:
            case = base[case_id]
            value = case.metadata.get(field)
            if value is None and isinstance(case.input, Mapping):
                value = case.input.get(field)
            key = "(missing)" if value is None else _text(value)
            members.setdefault(key, []).append(case_id)
        for key, ids in sorted(members.items()):
            if len(ids) >= suite.verdict.min_slice_cases and len(members) > 1:
                groups.append((f"{field}={key}", ids))
    return groups


def _comparison(
    metric: Metric,
    base: Mapping[str, CaseResult],
    new: Mapping[str, CaseResult],
    ids: Sequence[str],
    slice_name: str,
) -> Comparison:
    label = metric.label
    if isinstance(metric, Pairwise):
        return _pairwise(label, new, ids, slice_name)
    if isinstance(metric, PerCaseMetric):
        present = [i for i in ids if label in base[i].scores and label in new[i].scores]
        if not present:
            raise ValueError("no paired case has this score")
        b = {i: float(base[i].scores[label]) for i in present}
        n = {i: float(new[i].scores[label]) for i in present}
        binary = metric.binary and all(v in (0.0, 1.0) for v in (*b.values(), *n.values()))
        kind: Literal["binary", "continuous"] = "binary" if binary else "continuous"
        return Comparison(label, kind, b, n, slice=slice_name, correction=_correction(metric))
    # A corpus metric: both runs' answers end to end, indexed by position.
    cases = [base[i] for i in ids] + [new[i] for i in ids]
    statistic = metric.statistic(
        [c.prediction for c in cases],
        [c.expected for c in cases],
        [c.model_scores for c in cases] if metric.needs_scores else None,
    )
    count = len(ids)
    # Fail early and clearly (e.g. ROC AUC on one class) rather than inside the bootstrap.
    for side in (np.arange(count), np.arange(count, 2 * count)):
        if not np.isfinite(statistic(side)):
            raise ValueError("undefined on these cases")
    return Comparison(
        label,
        "aggregate",
        {i: float(k) for k, i in enumerate(ids)},
        {i: float(count + k) for k, i in enumerate(ids)},
        slice=slice_name,
        statistic=_on_positions(statistic),
    )


def _correction(metric: Metric) -> Correction | None:
    """The judge's measured error rates, when a binary judge metric gives them (its
    options check they come together, on a binary scale, with a sum above 1)."""
    if not isinstance(metric, JudgeMetric):
        return None
    se, sp = metric.settings.get("sensitivity"), metric.settings.get("specificity")
    if se is None or sp is None:
        return None
    return Correction(float(se), float(sp))


def _on_positions(statistic: Callable[[np.ndarray], float]) -> Callable[[np.ndarray], float]:
    return lambda positions: float(statistic(positions.astype(np.intp)))


def _operational(
    name: str,
    base: Mapping[str, CaseResult],
    new: Mapping[str, CaseResult],
    ids: Sequence[str],
    price: Price | None,
) -> tuple[dict[str, float], dict[str, float]] | None:
    def value(case: CaseResult) -> float | None:
        if name == "latency":
            return case.latency_seconds
        if case.prompt_tokens is None or case.completion_tokens is None:
            return None
        if name == "tokens":
            return float(case.prompt_tokens + case.completion_tokens)
        if price is None:
            return None
        return (
            case.prompt_tokens * price.prompt + case.completion_tokens * price.completion
        ) / price.per_tokens

    sides: list[dict[str, float]] = [{}, {}]
    for case_id in ids:
        for side, cases in zip(sides, (base, new), strict=True):
            measured = value(cases[case_id])
            if measured is None:
                return None
            side[case_id] = float(measured)
    return sides[0], sides[1]


def _row(verdict: MetricVerdict, unpaired: int) -> MetricComparison:
    test = verdict.test
    return MetricComparison(
        metric=verdict.metric,
        slice=verdict.slice,
        outcome=verdict.outcome,
        method=test.method,
        n=test.n,
        baseline=test.baseline,
        new=test.new,
        delta=test.delta,
        lower=test.lower,
        upper=test.upper,
        p_value=test.p_value,
        p_adjusted=verdict.p_adjusted,
        margin=verdict.margin,
        reason=verdict.reason,
        cases_needed=verdict.cases_needed,
        unpaired=unpaired,
        degraded=test.degraded,
        improved=test.improved,
        bound=verdict.bound,
        bound_side=verdict.bound_side,
        bound_level=1 - test.alpha,
    )


def _reason(
    outcome: str,
    verdicts: Sequence[MetricVerdict],
    paired: int,
    unpaired: int,
    skipped: Sequence[str],
) -> str:
    def where(v: MetricVerdict) -> str:
        return f"{v.metric} [{v.slice}]" if v.slice else v.metric

    if outcome == "regressed":
        worse = [v for v in verdicts if v.outcome == "regressed"]
        text = "; ".join(f"{where(v)}: {v.reason}" for v in worse[:5])
    elif outcome == "inconclusive":
        open_ = [v for v in verdicts if v.outcome == "inconclusive" and not v.slice]
        text = "; ".join(f"{where(v)}: {v.reason}" for v in open_[:5])
    elif outcome == "improved":
        better = [v for v in verdicts if v.outcome == "improved" and not v.slice]
        text = "; ".join(f"{where(v)}: {v.reason}" for v in better[:5])
    else:
        text = f"no metric changed beyond its tolerance over {paired} paired cases"
    if unpaired:
        text += f" ({unpaired} cases answered in only one run, not compared)"
    if skipped:
        text += f"; not compared: {'; '.join(skipped[:3])}"
    return text


def _changes(
    metrics: Sequence[Metric],
    policies: Mapping[str, Policy],
    base: Mapping[str, CaseResult],
    new: Mapping[str, CaseResult],
    paired: Sequence[str],
    limit: int,
) -> list[CaseChange]:
    """Up to ``limit`` degraded and ``limit`` improved cases, largest changes first, each
    case once: pass-to-fail and fail-to-pass for pass/fail metrics, the largest score
    moves for continuous ones (in the metric's better direction)."""
    moves: list[tuple[float, str, str, str, float, float]] = []
    for metric in metrics:
        if not isinstance(metric, PerCaseMetric):
            continue
        label = metric.label
        sign = 1.0 if policies[label].direction == "higher" else -1.0
        for case_id in paired:
            b, n = base[case_id].scores.get(label), new[case_id].scores.get(label)
            if isinstance(metric, Pairwise):
                b = 0.5  # the baseline's answer against itself: a tie; a loss degrades
            if b is None or n is None or b == n:
                continue
            gain = sign * (n - b)
            moves.append((abs(gain), "improved" if gain > 0 else "degraded", case_id, label, b, n))
    moves.sort(key=lambda m: (-m[0], m[2], m[3]))
    chosen: list[CaseChange] = []
    seen: set[str] = set()
    counts = {"degraded": 0, "improved": 0}
    for _, change, case_id, label, b, n in moves:
        if case_id in seen or counts[change] >= limit:
            continue
        seen.add(case_id)
        counts[change] += 1
        before, after = base[case_id], new[case_id]
        chosen.append(
            CaseChange(
                case_id=case_id,
                change=change,
                metric=label,
                baseline_score=float(b),
                new_score=float(n),
                input=clip(after.input),
                expected=clip(after.expected),
                baseline_prediction=clip(before.prediction),
                new_prediction=clip(after.prediction),
            )
        )
    # Degraded first: what a reviewer needs to see.
    return sorted(chosen, key=lambda c: c.change != "degraded")


def clip(value: Any, limit: int = CLIP) -> Any:
    """``value`` unchanged when short, else its text cut to ``limit`` characters."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = _text(value)
    if len(text) <= limit:
        return value
    return text[: limit - 1] + "…"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
