"""Score a run case by case as answers arrive, and aggregate at the end.

The runner hands each answered case to ``Evaluation.add`` and stores the returned per-case
scores right away; the evaluation keeps only what the aggregates need: one float per case
and per-case metric, the answers themselves only when a corpus metric (F1 macro, BLEU,
ROC AUC, ...) needs them, each case's slice values and its id. ``results`` then computes
every aggregate with n and a 95% interval, overall and per slice, plus the largest gap
between slices, and, for a suite with ``fairness``, the group fairness measures of
``monitor.scoring.fairness`` (fairlearn's) over the cases grouped by one case field.

Scoring one case (``CaseScorer``) is apart from recording it (``Evaluation.record``), so
the runner can score in worker processes (``score_cases``) and record on its event loop.
Cases arrive in whatever order the model answers them; every aggregate, and so every
bootstrap, sees them sorted by case id, so the same answers give the same intervals at
any concurrency.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
from array import array
from collections import OrderedDict, defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.records import FairnessValue, MetricValue, Run, SliceGap, SliceMetric
from monitor.scoring.base import Metric, MetricScore, PerCaseMetric
from monitor.scoring.intervals import RESAMPLES, bootstrap_mean, wilson
from monitor.scoring.judged import JudgeMetric, rogan_gladen
from monitor.scoring.repeats import Reducer, majority_index, reduce_scores, representative


@dataclass(frozen=True, slots=True)
class Attempt:
    """One answer of the model to a case: the prediction, the endpoint's own scores and,
    for judge metrics, each one's score by label (``None``: the judge failed)."""

    prediction: Any
    scores: Any = None
    judged: Mapping[str, float | None] | None = None


@dataclass(frozen=True, slots=True)
class Scored:
    """What is stored for an answered case: the representative prediction, every attempt's
    prediction when repeated, and the per-case metric scores."""

    prediction: Any
    attempts: list[Any] | None
    scores: dict[str, float]
    model_scores: Any = None


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    """Aggregates of a run. ``skipped`` names metrics that could not be computed (e.g.
    ROC AUC without the endpoint's scores) with the reason, overall or for a slice."""

    metrics: list[MetricValue]
    slices: list[SliceMetric]
    gaps: list[SliceGap]
    skipped: list[str]
    fairness: list[FairnessValue] = dataclasses.field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Fairness:
    """Which group fairness measures a run reports: over the case field ``groups``, with
    ``positive`` the favourable outcome (``fairness`` of a classification suite)."""

    groups: str
    positive: str = "1"
    measures: tuple[str, ...] = (
        "demographic_parity_difference",
        "demographic_parity_ratio",
        "equalized_odds_difference",
    )


@dataclass(frozen=True, slots=True)
class Repeats:
    """How repeated attempts are reduced (see ``monitor.scoring.repeats``)."""

    reducer: Reducer = "mean"
    pass_score: float = 1.0
    at_least: int | None = None
    numeric: bool = False


class CaseScorer:
    """Scores one answered case with a suite's per-case metrics and its repeat settings.
    Pure, and picklable (metrics pickle as their class and options), so it can run in a
    worker process and give the same scores as in the runner's own."""

    def __init__(self, metrics: Sequence[Metric], repeats: Repeats) -> None:
        self.metrics = [m for m in metrics if isinstance(m, PerCaseMetric)]
        self.repeats = repeats

    def score(self, expected: Any, attempts: Sequence[Attempt]) -> Scored:
        """What to store for a case answered by ``attempts`` (one or more)."""
        predictions = [a.prediction for a in attempts]
        settings = self.repeats
        chosen = majority_index(predictions) if len(attempts) > 1 else 0
        scores: dict[str, float] = {}
        for metric in self.metrics:
            if isinstance(metric, JudgeMetric):
                judged = _judged(metric.label, attempts)
                if judged is None:
                    continue  # every attempt's judge failed: no score, never a made-up one
                each, majority = judged
            else:
                each = [metric.score_case(a.prediction, expected, a.scores) for a in attempts]
                majority = chosen
            scores[metric.label] = reduce_scores(
                each,
                settings.reducer,
                majority=majority,
                pass_score=settings.pass_score,
                at_least=settings.at_least,
            )
            if isinstance(metric, JudgeMetric):
                _keep_agreement(metric.label, attempts, scores)
        answer = (
            representative(predictions, settings.reducer, numeric=settings.numeric)
            if len(attempts) > 1
            else predictions[0]
        )
        return Scored(
            answer, predictions if len(attempts) > 1 else None, scores, attempts[chosen].scores
        )


def _judged(label: str, attempts: Sequence[Attempt]) -> tuple[list[float], int] | None:
    """The judge's scores of the attempts it scored, and which of them is the majority
    answer's; ``None`` when it scored none."""
    predictions = [a.prediction for a in attempts]
    chosen = majority_index(predictions) if len(attempts) > 1 else 0
    kept = [
        (i, score)
        for i, a in enumerate(attempts)
        if (score := (a.judged or {}).get(label)) is not None
    ]
    if not kept:
        return None
    majority = next((k for k, (i, _) in enumerate(kept) if i == chosen), 0)
    return [score for _, score in kept], majority


def _keep_agreement(label: str, attempts: Sequence[Attempt], scores: dict[str, float]) -> None:
    """The judge's agreement with itself on the case (``judge_repeats``), when measured:
    its mean over the attempts, kept with the case's scores as ``<label>.agreement``."""
    key = f"{label}.agreement"
    found = [v for a in attempts if (v := (a.judged or {}).get(key)) is not None]
    if found:
        scores[key] = sum(found) / len(found)


_SCORERS: OrderedDict[bytes, CaseScorer] = OrderedDict()
"""In a worker process: the scorers of the last few suites, by their pickle."""


def score_cases(scorer: bytes, cases: Sequence[tuple[Any, Sequence[Attempt]]]) -> list[Scored]:
    """Score ``cases`` (expected value, attempts) with the pickled ``scorer``: the task a
    worker process runs. The scorer is unpickled (its metrics built) once per process and
    kept, so a run pays building its metrics once, not per batch."""
    built = _SCORERS.get(scorer)
    if built is None:
        built = _SCORERS[scorer] = pickle.loads(scorer)  # the runner's own pickle
        while len(_SCORERS) > 8:
            _SCORERS.popitem(last=False)
    return [built.score(expected, attempts) for expected, attempts in cases]


def evaluation_results(evaluation: Evaluation) -> EvaluationResult:
    """``evaluation.results()``: a function a worker process can be given."""
    return evaluation.results()


class Evaluation:
    """Per-case scoring now, aggregates later, for one run."""

    def __init__(
        self,
        metrics: Sequence[Metric],
        *,
        repeats: Repeats | None = None,
        slices: Sequence[str] = (),
        seed: int = 0,
        fairness: Fairness | None = None,
    ) -> None:
        self._metrics = list(metrics)
        self._repeats = repeats or Repeats()
        self.scorer = CaseScorer(self._metrics, self._repeats)
        self._slice_fields = list(slices)
        self._seed = seed
        self._per_case = {m.label: array("d") for m in self._metrics if _per_case(m)}
        self._corpus = [m for m in self._metrics if not _per_case(m)]
        self._columns: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
        # Slice values as small integer codes (4 bytes a case), decoded at the end.
        self._slice_codes: dict[str, array[int]] = {name: array("i") for name in slices}
        self._slice_names: dict[str, dict[str, int]] = {name: {} for name in slices}
        self._ids = CaseIds()
        self._fairness = fairness
        # (prediction, expected, group) of every case, only with ``fairness``.
        self._groups: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
        self._repeated = False
        self.n = 0

    @property
    def cpu_bound(self) -> bool:
        """Whether any metric is CPU-bound enough to be scored off the event loop."""
        return any(m.cpu_bound for m in self._metrics)

    def add(
        self, case_id: str, expected: Any, attempts: Sequence[Attempt], slices: Mapping[str, Any]
    ) -> Scored:
        """Score one answered case (one or more attempts), record it, and return what to
        store for it."""
        scored = self.scorer.score(expected, attempts)
        self.record(case_id, expected, scored, slices)
        return scored

    def record(
        self, case_id: str, expected: Any, scored: Scored, slices: Mapping[str, Any]
    ) -> None:
        """Keep what the aggregates need of a case ``CaseScorer`` scored; ``slices``
        holds the case's slice values and, with ``fairness``, its group."""
        if self._corpus:
            self._columns[0].append(scored.prediction)
            self._columns[1].append(expected)
            self._columns[2].append(scored.model_scores)
        for label, values in self._per_case.items():
            # A judge metric the judge could not score for this case is NaN here, and is
            # left out of its aggregate (whose n counts the cases it scored).
            values.append(scored.scores.get(label, math.nan))
        if self._fairness is not None:
            for column, value in zip(
                self._groups,
                (scored.prediction, expected, slices.get(self._fairness.groups)),
                strict=True,
            ):
                column.append(value)
        for name in self._slice_fields:
            codes = self._slice_names[name]
            key = _slice_key(slices.get(name))
            self._slice_codes[name].append(codes.setdefault(key, len(codes)))
        self._ids.append(case_id)
        self._repeated |= scored.attempts is not None
        self.n += 1

    def results(self) -> EvaluationResult:
        """Every metric overall and per slice value; empty when no case was answered."""
        if self.n == 0:
            return EvaluationResult([], [], [], [])
        skipped: list[str] = []
        # Every group of cases in case id order, whatever order the answers came in.
        order = self._ids.order()
        metrics = self._values(order, skipped, "")
        slices: list[SliceMetric] = []
        # Each slice's cases, in case id order: what the gaps' intervals resample.
        groups: dict[tuple[str, str], np.ndarray[Any, Any]] = {}
        for name, codes in self._slice_codes.items():
            column = np.frombuffer(codes, dtype=np.int32)[order]
            for key, code in sorted(self._slice_names[name].items()):
                members = groups[name, key] = order[column == code]
                for value in self._values(members, skipped, f" for {name}={key}"):
                    slices.append(
                        SliceMetric(
                            name, key, value.name, value.value, value.lower, value.upper, value.n
                        )
                    )
        lower_is_better = {m.label for m in self._metrics if not m.higher_is_better}
        gaps = [self._gap_interval(gap, groups) for gap in slice_gaps(slices, lower_is_better)]
        fairness = self._fairness_values(order, skipped)
        return EvaluationResult(metrics, slices, gaps, skipped, fairness)

    def _gap_interval(
        self, gap: SliceGap, groups: Mapping[tuple[str, str], np.ndarray[Any, Any]]
    ) -> SliceGap:
        """``gap`` with its 95% interval: a seeded bootstrap that resamples the best
        slice's cases and the worst slice's cases, each within its own slice (a suite's
        slices have the sizes its dataset gives them), and recomputes the best slice's
        metric minus the worst's. The pair stays the one the point gap names (re-choosing
        the largest gap in every resample would bias the interval upwards). Both slices'
        cases are in case id order and the generator is seeded with the suite's seed, so
        the same answers give the same interval at any concurrency."""
        metric = next((m for m in self._metrics if m.label == gap.metric), None)
        if metric is None:
            return gap
        best, worst = groups[gap.field, gap.best], groups[gap.field, gap.worst]
        if isinstance(metric, PerCaseMetric):
            lower, upper = self._per_case_gap_interval(metric, best, worst)
        else:
            lower, upper = self._corpus_gap_interval(metric, best, worst)
        return dataclasses.replace(gap, lower=lower, upper=upper)

    def _per_case_gap_interval(
        self, metric: PerCaseMetric, best: np.ndarray[Any, Any], worst: np.ndarray[Any, Any]
    ) -> tuple[float | None, float | None]:
        scores = np.frombuffer(self._per_case[metric.label], dtype=np.float64)
        sides = [scores[best], scores[worst]]
        if isinstance(metric, JudgeMetric):
            sides = [side[~np.isnan(side)] for side in sides]
        if min(len(side) for side in sides) < 2:
            return None, None
        rng = np.random.default_rng(self._seed)
        of_best, of_worst = (_resampled_means(side, rng) for side in sides)
        if isinstance(metric, JudgeMetric) and self._proportion(metric):
            of_best, of_worst = (_corrected_shares(metric, v) for v in (of_best, of_worst))
        return _percentile_interval(_sign(metric) * (of_best - of_worst))

    def _corpus_gap_interval(
        self, metric: Metric, best: np.ndarray[Any, Any], worst: np.ndarray[Any, Any]
    ) -> tuple[float | None, float | None]:
        """The corpus metric recomputed over each resample of either slice (its own
        statistic, as the slice's value is); resamples where either side is undefined
        (one class only for ROC AUC) are dropped, and with fewer than half of them left
        there is no interval, as for the metric's own interval."""
        if min(len(best), len(worst)) < 2:
            return None, None
        predictions, expected, scores = self._columns

        def statistic(members: np.ndarray[Any, Any]) -> Any:
            pick = members.tolist()
            return metric.statistic(
                [predictions[i] for i in pick],
                [expected[i] for i in pick],
                [scores[i] for i in pick] if metric.needs_scores else None,
            )

        of_best, of_worst = statistic(best), statistic(worst)
        rng = np.random.default_rng(self._seed)
        differences = []
        for _ in range(RESAMPLES):
            picked_best = rng.integers(0, len(best), size=len(best))
            picked_worst = rng.integers(0, len(worst), size=len(worst))
            try:
                difference = _sign(metric) * (
                    float(of_best(picked_best)) - float(of_worst(picked_worst))
                )
            except ValueError:
                continue
            if math.isfinite(difference):
                differences.append(difference)
        if len(differences) < RESAMPLES / 2:
            return None, None
        return _percentile_interval(np.asarray(differences))

    def _fairness_values(
        self, order: np.ndarray[Any, Any], skipped: list[str]
    ) -> list[FairnessValue]:
        """The configured fairness measures over the cases in id order (so the bootstrap
        draws the same resamples at any concurrency); an undefined one is skipped."""
        settings = self._fairness
        if settings is None:
            return []
        # Imported here: fairlearn (and pandas under it) only for suites that ask.
        from monitor.scoring.fairness import fairness

        pick = order.tolist()
        predictions, expected, groups = ([column[i] for i in pick] for column in self._groups)
        n = sum(
            p is not None and y is not None and g is not None
            for p, y, g in zip(predictions, expected, groups, strict=True)
        )
        found = {
            m.measure: m
            for m in fairness(
                predictions, expected, groups, positive=settings.positive, seed=self._seed
            )
        }
        out = []
        for name in settings.measures:
            measure = found.get(name)
            if measure is None or not math.isfinite(measure.value):
                skipped.append(f"fairness {name} over {settings.groups}: undefined on these cases")
                continue
            lower, upper = (
                v if v is not None and math.isfinite(v) else None
                for v in (measure.lower, measure.upper)
            )
            out.append(FairnessValue(settings.groups, name, measure.value, lower, upper, n))
        return out

    def _values(
        self, members: np.ndarray[Any, Any], skipped: list[str], where: str
    ) -> list[MetricValue]:
        values = []
        for metric in self._metrics:
            try:
                score = self._score(metric, metric.label, members)
            except ValueError as exc:
                skipped.append(f"{metric.label}{where}: {exc}")
                continue
            if np.isfinite(score.value):
                values.append(
                    MetricValue(
                        metric.label,
                        score.value,
                        score.lower,
                        score.upper,
                        self._scored_cases(metric, members),
                        score.detail,
                    )
                )
            else:
                skipped.append(f"{metric.label}{where}: undefined on these cases")
        return values

    def _scored_cases(self, metric: Metric, members: np.ndarray[Any, Any]) -> int:
        if not isinstance(metric, JudgeMetric):
            return len(members)
        values = np.frombuffer(self._per_case[metric.label], dtype=np.float64)[members]
        return int(np.count_nonzero(~np.isnan(values)))

    def _proportion(self, metric: PerCaseMetric) -> bool:
        """Whether the metric's aggregate is a share of cases (a Wilson interval, and for
        a judge the Rogan-Gladen correction): a 0/1 metric, unless repeats averaged it."""
        return metric.binary and not (self._repeated and self._repeats.reducer == "mean")

    def _score(self, metric: Metric, label: str, members: np.ndarray[Any, Any]) -> MetricScore:
        if isinstance(metric, PerCaseMetric):
            values = np.frombuffer(self._per_case[label], dtype=np.float64)[members]
            if isinstance(metric, JudgeMetric):
                values = values[~np.isnan(values)]
                if not len(values):
                    raise ValueError("the judge scored none of these cases")
            if self._proportion(metric):
                score = _proportion(metric, values)
                return _corrected(metric, score) if isinstance(metric, JudgeMetric) else score
            return _continuous(metric, values, self._seed)
        predictions, expected, scores = self._columns
        pick = members.tolist()
        subset_scores = [scores[i] for i in pick] if metric.needs_scores else None
        return metric.compute(
            [predictions[i] for i in pick],
            [expected[i] for i in pick],
            subset_scores,
            seed=self._seed,
        )


class CaseIds:
    """The ids of recorded cases, in the order they came, packed: their UTF-8 bytes end to
    end and an 8-byte offset a case, not a Python string each."""

    def __init__(self) -> None:
        self._bytes = bytearray()
        self._ends = array("q")

    def append(self, case_id: str) -> None:
        self._bytes += case_id.encode()
        self._ends.append(len(self._bytes))

    def __len__(self) -> int:
        return len(self._ends)

    def order(self) -> np.ndarray[Any, np.dtype[np.intp]]:
        """The positions of the cases sorted by id (ids are unique in a dataset). UTF-8
        bytes sort as their strings do, so this is Python's order of the ids."""
        n = len(self._ends)
        if n == 0:
            return np.arange(0)
        ends = np.frombuffer(self._ends, dtype=np.int64)
        starts = np.concatenate(([0], ends[:-1]))
        width = max(1, int((ends - starts).max()))
        # One fixed-width row per id, NUL-padded: numpy compares such rows as bytes, so a
        # shorter id sorts before the longer ones it begins.
        packed = np.zeros((n, width), dtype=np.uint8)
        data = np.frombuffer(bytes(self._bytes), dtype=np.uint8)
        row = np.repeat(np.arange(n), ends - starts)
        packed[row, np.arange(len(data)) - np.repeat(starts, ends - starts)] = data
        return np.argsort(packed.view(f"S{width}").ravel(), kind="stable")


def _continuous(metric: PerCaseMetric, values: np.ndarray[Any, Any], seed: int) -> MetricScore:
    mean, lower, upper = bootstrap_mean(values, seed=seed)
    return MetricScore(mean, lower, upper, None, metric.detail())


def _proportion(metric: PerCaseMetric, values: np.ndarray[Any, Any]) -> MetricScore:
    """Wilson from the count of successes, without materialising per-case Python floats."""
    mean, lower, upper = wilson(round(float(values.sum())), len(values))
    return MetricScore(mean, lower, upper, None, metric.detail())


def _corrected(metric: JudgeMetric, score: MetricScore) -> MetricScore:
    """A binary judge metric with the judge's measured ``sensitivity`` and
    ``specificity``: its share and interval ends corrected for the judge's errors
    (Rogan-Gladen, monotonic, so the interval stays an interval); the share the judge
    gave is kept in ``detail``."""
    se, sp = metric.settings.get("sensitivity"), metric.settings.get("specificity")
    if se is None or sp is None:
        return score

    def fix(x: float | None) -> float | None:
        return None if x is None else rogan_gladen(x, se, sp)

    value = rogan_gladen(score.value, se, sp)
    detail = (
        f"Rogan-Gladen corrected (sensitivity {se:g}, specificity {sp:g}; judged {score.value:.4g})"
    )
    return MetricScore(value, fix(score.lower), fix(score.upper), score.per_case, detail)


_FEW_SCORES = 64
"""A slice whose cases have at most this many distinct scores (0/1 metrics, a judge's
scale) is resampled as counts: a multinomial draw of how often each score is picked."""


def _resampled_means(
    scores: np.ndarray[Any, Any], rng: np.random.Generator
) -> np.ndarray[Any, Any]:
    """``RESAMPLES`` bootstrap means of ``scores`` (cases with replacement, as many as
    there are). With few distinct scores, drawn as how many times each score is picked (a
    multinomial over the scores' shares, the same distribution as resampling cases, in
    time independent of the slice's size); otherwise by resampling case indices, at most
    a million at once (as ``bootstrap_mean``)."""
    n = len(scores)
    values, counts = np.unique(scores, return_counts=True)
    if len(values) <= _FEW_SCORES:
        picked = rng.multinomial(n, counts / n, size=RESAMPLES)
        means: np.ndarray[Any, Any] = picked @ values / n
        return means
    chunk = max(1, 1_000_000 // n)
    return np.concatenate(
        [
            scores[rng.integers(0, n, size=(min(chunk, RESAMPLES - start), n))].mean(axis=1)
            for start in range(0, RESAMPLES, chunk)
        ]
    )


def _corrected_shares(metric: JudgeMetric, shares: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Resampled shares of a binary judge metric with the judge's measured error rates,
    corrected as its slices' values are (``_corrected``); unchanged without them."""
    se, sp = metric.settings.get("sensitivity"), metric.settings.get("specificity")
    if se is None or sp is None:
        return shares
    corrected: np.ndarray[Any, Any] = np.clip((shares + sp - 1) / (se + sp - 1), 0.0, 1.0)
    return corrected


def _percentile_interval(values: np.ndarray[Any, Any]) -> tuple[float | None, float | None]:
    """The 2.5th and 97.5th percentiles of bootstrap ``values``."""
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def _per_case(metric: Metric) -> bool:
    return isinstance(metric, PerCaseMetric)


def _slice_key(value: Any) -> str:
    if value is None:
        return "(missing)"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def run_gaps(run: Run) -> list[SliceGap]:
    """A stored run's slice gaps with their intervals; for a run stored before they were
    kept (revision 0026), the point gaps recomputed from its slices, without intervals."""
    return list(run.gaps) if run.gaps else slice_gaps(run.slices)


def _sign(metric: Metric) -> float:
    """+1 where a higher score is better, -1 where lower is (errors): a gap, best minus
    worst in the metric's direction, is never negative."""
    return 1.0 if metric.higher_is_better else -1.0


def slice_gaps(
    slices: Sequence[SliceMetric], lower_is_better: Collection[str] = ()
) -> list[SliceGap]:
    """Per slice field and metric with at least two slice values: the largest difference
    between them, and which values are best and worst in the metric's direction (the
    lowest error is the best of a metric in ``lower_is_better``; ties to the value
    sorting first; two different values, so with every value tied the gap is 0 between
    the first two)."""
    grouped: dict[tuple[str, str], list[SliceMetric]] = defaultdict(list)
    for item in slices:
        grouped[item.field, item.metric].append(item)
    gaps = []
    for (field, metric), items in sorted(grouped.items()):
        if len(items) < 2:
            continue
        # Items arrive sorted by slice value, and max/min keep the first of equals.
        sign = -1.0 if metric in lower_is_better else 1.0
        best = max(items, key=lambda s: sign * s.score)
        worst = min((s for s in items if s is not best), key=lambda s: sign * s.score)
        gap = sign * (best.score - worst.score)
        gaps.append(SliceGap(field, metric, gap, best.value, worst.value))
    return gaps
