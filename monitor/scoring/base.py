"""The metric interface, metric options and the registry.

A metric turns predictions and expected values into one number with a 95% interval over
``n`` cases. Two kinds exist:

- ``PerCaseMetric``: the mean of a score given to each case on its own (accuracy,
  exact match, ROUGE, NDCG@k). Per-case scores are kept with each case, which is what the
  comparison against a baseline pairs on. Proportions (0/1 scores) get a Wilson interval,
  other scores a seeded bootstrap of the mean.
- ``CorpusMetric``: a number computed over all cases at once (macro F1, ROC AUC, BLEU);
  its interval is a seeded bootstrap over cases.

Metrics take options (``average``, ``k``, ``pattern``, ``schema``, ``stemming``, ...),
declared per class with their type and default; ``build_metric`` turns what users write
(``"ndcg@10"`` or ``{name = "f1", average = "macro"}``) into a configured instance.
Adding a metric means adding a class in one family module decorated with ``register``.
"""

from __future__ import annotations

import difflib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias

from monitor.scoring.intervals import bootstrap_interval, bootstrap_mean, mean_interval

if TYPE_CHECKING:
    # numpy is imported where metrics compute, not here: the configuration imports this
    # package to validate metric names and must not pay numpy's import for it.
    import numpy as np
    import numpy.typing as npt

    Indices: TypeAlias = npt.NDArray[np.intp]
    Statistic: TypeAlias = Callable[[Indices], float]

Task = Literal["classification", "regression", "text", "ranking"]
Scale = Literal["ratio", "points", "value"]
"""What a metric's numbers mean: ``ratio`` a fraction of 1 (accuracy 0.93: dashboards show
93%), ``points`` on 0-100 (BLEU, chrF, as sacrebleu reports them), ``value`` in the data's
own units (MAE, RMSE, log loss, R2)."""
SCALES: tuple[Scale, ...] = ("ratio", "points", "value")
TASKS: tuple[Task, ...] = ("classification", "regression", "text", "ranking")

_AT_K = re.compile(r"^(?P<name>[a-z0-9-]+)@(?P<k>[0-9]+)$")


@dataclass(frozen=True, slots=True)
class MetricScore:
    """A metric over a set of cases: the value, a 95% interval, and per-case scores when the
    metric decomposes over cases. ``detail`` carries what a reader needs to reproduce the
    number (sacrebleu's signature)."""

    value: float
    lower: float | None
    upper: float | None
    per_case: tuple[float, ...] | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Option:
    """One option a metric takes: accepted Python types and the default (``None``:
    required unless the metric says otherwise)."""

    types: tuple[type, ...]
    default: Any = None


class Metric(ABC):
    """A named, configured way to score a task's predictions against expected values."""

    name: ClassVar[str]
    tasks: ClassVar[frozenset[Task]]
    options: ClassVar[Mapping[str, Option]] = {}
    needs_scores: ClassVar[bool] = False
    """True when the metric reads the endpoint's probabilities/scores, not the answer."""
    scale: ClassVar[Scale] = "ratio"
    """The metric's scale (``Scale``): how dashboards and reports show its numbers."""
    higher_is_better: ClassVar[bool] = True
    """False for error metrics (MAE, RMSE, MAPE, log loss): a verdict judges a rise as a
    regression."""
    cpu_bound: ClassVar[bool] = False
    """True when scoring costs enough CPU (ROUGE's longest common subsequence in pure
    Python, sacrebleu's n-gram statistics, a JSON Schema validation) that a run scores its
    suite in worker processes, off the event loop that reads the model's answers."""

    def __init__(self, **options: Any) -> None:
        for key, value in options.items():
            option = self.options.get(key)
            if option is None:
                takes = ", ".join(sorted(self.options)) or "no options"
                raise ValueError(f"metric {self.name!r} has no option {key!r} (it takes: {takes})")
            if not isinstance(value, option.types) or (
                isinstance(value, bool) and bool not in option.types
            ):
                kinds = " or ".join(t.__name__ for t in option.types)
                raise ValueError(f"option {key!r} of metric {self.name!r}: expected {kinds}")
        self.settings: dict[str, Any] = {k: o.default for k, o in self.options.items()}
        self.settings.update(options)
        self._given = dict(options)
        self.check()

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as its class and options and built again on the other side: what
        # ``check`` prepared (a ROUGE scorer, a schema validator) need not pickle.
        return _rebuild, (type(self), self._given)

    def check(self) -> None:  # noqa: B027 - optional hook
        """Refuse option values that are well typed but meaningless (raise ``ValueError``)."""

    @property
    def label(self) -> str:
        """The name results are stored under: ``ndcg@10``, ``f1[average=micro]``."""
        given = dict(self._given)
        base = self.name
        if base.endswith("@k"):
            base = f"{base[:-2]}@{given.pop('k', self.settings['k'])}"
        shown = {k: v for k, v in given.items() if v != self.options[k].default and k != "schema"}
        if "schema" in given:
            shown["schema"] = "custom"
        if not shown:
            return base
        return base + "[" + ",".join(f"{k}={_show(v)}" for k, v in sorted(shown.items())) + "]"

    @property
    def proportion(self) -> bool:
        """Whether the metric is a share of cases (Wilson interval)."""
        return False

    @abstractmethod
    def statistic(
        self, predictions: Sequence[Any], expected: Sequence[Any], scores: Sequence[Any] | None
    ) -> Statistic:
        """A function from an array of case indices to the metric over those cases. The
        value uses every case; the bootstrap resamples indices."""

    def detail(self) -> str | None:
        """Text that identifies how the number was computed, if any."""
        return None

    def compute(
        self,
        predictions: Sequence[Any],
        expected: Sequence[Any],
        scores: Sequence[Any] | None = None,
        *,
        seed: int = 0,
    ) -> MetricScore:
        """Score ``predictions`` against ``expected`` (same length, at least one case)."""
        import numpy as np

        _same_length(self.name, predictions, expected)
        stat = self.statistic(predictions, expected, scores)
        n = len(predictions)
        value = stat(np.arange(n))
        lower, upper = bootstrap_interval(stat, n, seed=seed)
        return MetricScore(value, lower, upper, detail=self.detail())


class PerCaseMetric(Metric):
    """A metric that is the mean of a score given to each case on its own."""

    binary: ClassVar[bool] = False

    @property
    def proportion(self) -> bool:
        return self.binary

    @abstractmethod
    def score_case(self, prediction: Any, expected: Any, scores: Any = None) -> float:
        """The score of one case."""

    def statistic(
        self, predictions: Sequence[Any], expected: Sequence[Any], scores: Sequence[Any] | None
    ) -> Statistic:
        import numpy as np

        values = np.array(self.score_all(predictions, expected, scores), dtype=float)
        return lambda idx: float(values[idx].mean())

    def score_all(
        self, predictions: Sequence[Any], expected: Sequence[Any], scores: Sequence[Any] | None
    ) -> list[float]:
        """Every case's score, in order."""
        attached = scores if scores is not None else [None] * len(predictions)
        return [
            self.score_case(p, e, s)
            for p, e, s in zip(predictions, expected, attached, strict=True)
        ]

    def aggregate(self, values: Sequence[float], *, seed: int = 0) -> MetricScore:
        """The mean of per-case ``values`` with a Wilson (proportions) or bootstrap interval."""
        import numpy as np

        if self.binary:
            mean, lower, upper = mean_interval(values, binary=True)
        else:
            mean, lower, upper = bootstrap_mean(np.asarray(values, dtype=float), seed=seed)
        return MetricScore(mean, lower, upper, tuple(values), self.detail())

    def compute(
        self,
        predictions: Sequence[Any],
        expected: Sequence[Any],
        scores: Sequence[Any] | None = None,
        *,
        seed: int = 0,
    ) -> MetricScore:
        _same_length(self.name, predictions, expected)
        return self.aggregate(self.score_all(predictions, expected, scores), seed=seed)


class CorpusMetric(Metric):
    """A metric computed over every case at once; bootstrap over cases for its interval."""


_REGISTRY: dict[str, type[Metric]] = {}


def register(metric: type[Metric]) -> type[Metric]:
    """Class decorator: make ``metric`` available under its ``name``."""
    if metric.name in _REGISTRY:
        raise ValueError(f"metric {metric.name!r} is registered twice")
    _REGISTRY[metric.name] = metric
    return metric


def metric_names() -> list[str]:
    """Every registered metric name, sorted (``@k`` metrics as ``ndcg@k``)."""
    return sorted(_REGISTRY)


def unknown_metric_message(name: str) -> str:
    """The error text for a metric name that is not registered, with a suggestion."""
    close = difflib.get_close_matches(name, _REGISTRY, n=1, cutoff=0.6)
    hint = (
        f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(metric_names())}"
    )
    return f"unknown metric {name!r}; {hint}"


def metric_class(name: str) -> type[Metric]:
    """The class registered as ``name``; ``"ndcg@10"`` finds ``ndcg@k``. ``KeyError``
    with a suggestion otherwise."""
    match = _AT_K.match(name)
    key = f"{match['name']}@k" if match else name
    try:
        return _REGISTRY[key]
    except KeyError:
        raise KeyError(unknown_metric_message(name)) from None


def get_metric(name: str, **options: Any) -> Metric:
    """An instance of the metric called ``name`` (``"ndcg@10"`` sets ``k``)."""
    cls = metric_class(name)
    match = _AT_K.match(name)
    if match and cls.name.endswith("@k"):
        options = {"k": int(match["k"]), **options}
    return cls(**options)


def build_metric(spec: str | Mapping[str, Any]) -> Metric:
    """A metric from what a user writes: a name or a table with ``name`` and options.

    Raises ``ValueError`` (unknown name, unknown or ill-typed option) with a message that
    names the metric and what was expected.
    """
    if isinstance(spec, str):
        name, options = spec, {}
    elif isinstance(spec, Mapping):
        options = dict(spec)
        name = options.pop("name", None)
        if not isinstance(name, str):
            raise ValueError("a metric table needs a 'name' (e.g. {name = \"f1\"})")
    else:
        raise ValueError('expected a metric name or a table like {name = "f1", average = "macro"}')
    try:
        return get_metric(name, **options)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None


def _rebuild(cls: type[Metric], options: dict[str, Any]) -> Metric:
    return cls(**options)


def _same_length(name: str, predictions: Sequence[Any], expected: Sequence[Any]) -> None:
    if len(predictions) != len(expected):
        raise ValueError(f"{name}: {len(predictions)} predictions for {len(expected)} expected")
    if not predictions:
        raise ValueError(f"{name}: cannot score zero cases")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
