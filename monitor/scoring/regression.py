"""Regression metrics, computed with scikit-learn over every answered case.

scikit-learn is imported when a metric is computed, not with this module: validating a
configuration names metrics without paying for the library (seconds at start-up).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from monitor.scoring.base import CorpusMetric, Task, register

if TYPE_CHECKING:
    from monitor.scoring.base import Statistic

_REGRESSION: frozenset[Task] = frozenset({"regression"})


class _Regression(CorpusMetric):
    tasks = _REGRESSION
    function: ClassVar[str]
    """The name of the ``sklearn.metrics`` function that computes the metric."""

    def statistic(
        self, predictions: Sequence[Any], expected: Sequence[Any], scores: Sequence[Any] | None
    ) -> Statistic:
        import numpy as np

        y_true = np.array([_number(e, "expected") for e in expected])
        y_pred = np.array([_number(p, "prediction") for p in predictions])
        from sklearn import metrics as skm

        function = getattr(skm, type(self).function)
        return lambda idx: float(function(y_true[idx], y_pred[idx]))


def _number(value: Any, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"a regression {what} must be a number, got {value!r:.40}") from None


@register
class MeanAbsoluteError(_Regression):
    """Mean absolute error."""

    name = "mae"
    scale = "value"
    higher_is_better = False
    function = "mean_absolute_error"


@register
class RootMeanSquaredError(_Regression):
    """Root mean squared error."""

    name = "rmse"
    scale = "value"
    higher_is_better = False
    function = "root_mean_squared_error"


@register
class R2(_Regression):
    """Coefficient of determination."""

    name = "r2"
    scale = "value"
    function = "r2_score"


@register
class MeanAbsolutePercentageError(_Regression):
    """Mean absolute percentage error, as a fraction (scikit-learn's definition)."""

    name = "mape"
    higher_is_better = False
    function = "mean_absolute_percentage_error"
