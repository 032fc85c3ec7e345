"""Classification metrics, computed with scikit-learn.

Labels are compared as text (see ``normalise_label``). Precision, recall and F1 take an
``average`` (``macro`` by default, ``micro``, ``weighted``) or a ``label``: the score of
that one class, which is how per-class numbers are asked for. ROC AUC and log loss read the
endpoint's scores: a mapping of class to probability, or one number, the probability of the
``positive`` class (binary tasks).

scikit-learn is imported when a metric is computed, not with this module: validating a
configuration names metrics without paying for the library (seconds at start-up).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from monitor.scoring.base import CorpusMetric, Option, PerCaseMetric, Task, register

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from monitor.scoring.base import Indices, Statistic

_CLASSIFICATION: frozenset[Task] = frozenset({"classification"})
_AVERAGES = ("macro", "micro", "weighted")


def normalise_label(value: Any) -> str:
    """Labels are compared as text so that ``1``, ``1.0`` and ``"1"`` are the same class,
    as they are when a JSON API and a CSV file describe the same dataset."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


@register
class Accuracy(PerCaseMetric):
    """Share of cases whose predicted label equals the expected one."""

    name = "accuracy"
    tasks = _CLASSIFICATION
    binary = True

    def score_case(self, prediction: Any, expected: Any, scores: Any = None) -> float:
        return float(normalise_label(prediction) == normalise_label(expected))


class _PrecisionRecallF(CorpusMetric):
    """Shared by precision, recall and F1: ``average`` over classes, or one ``label``."""

    tasks = _CLASSIFICATION
    options: ClassVar[Mapping[str, Option]] = {
        "average": Option((str,), "macro"),
        "label": Option((str, int, float, bool)),
    }
    function: ClassVar[str]
    """The name of the ``sklearn.metrics`` function that computes the metric."""

    def check(self) -> None:
        if self.settings["average"] not in _AVERAGES:
            raise ValueError(
                f"option 'average' of metric {self.name!r}: expected one of"
                f" {', '.join(_AVERAGES)}, got {self.settings['average']!r}"
            )

    def statistic(
        self, predictions: Sequence[Any], expected: Sequence[Any], scores: Sequence[Any] | None
    ) -> Statistic:
        import numpy as np

        truths = [normalise_label(e) for e in expected]
        guesses = [normalise_label(p) for p in predictions]
        classes = sorted(set(truths) | set(guesses))
        code = {label: i for i, label in enumerate(classes)}
        y_true = np.array([code[t] for t in truths])
        y_pred = np.array([code[g] for g in guesses])
        label = self.settings["label"]
        only = None if label is None else code.get(normalise_label(label), -1)
        everything = len(truths)

        def stat(idx: Indices) -> float:
            if len(idx) == everything and np.array_equal(idx, np.arange(everything)):
                # The reported value: scikit-learn itself.
                return self._sklearn(y_true, y_pred, only)
            return self._from_confusion(y_true[idx], y_pred[idx], len(classes), only)

        return stat

    def _sklearn(self, y_true: Indices, y_pred: Indices, only: int | None) -> float:
        from sklearn import metrics as skm

        function = getattr(skm, type(self).function)
        if only is not None:
            return float(
                function(y_true, y_pred, labels=[only], average="macro", zero_division=0.0)
            )
        return float(function(y_true, y_pred, average=self.settings["average"], zero_division=0.0))

    def _from_confusion(
        self, y_true: Indices, y_pred: Indices, size: int, only: int | None
    ) -> float:
        """The same number from a confusion matrix: what the bootstrap recomputes a thousand
        times (a test holds it equal to scikit-learn on resampled cases)."""
        import numpy as np

        if only is not None and only < 0:
            return 0.0
        confusion = np.bincount(y_true * size + y_pred, minlength=size * size).reshape(size, size)
        tp = np.diag(confusion).astype(float)
        predicted, actual = confusion.sum(axis=0), confusion.sum(axis=1)
        average = self.settings["average"]
        if only is None and average == "micro":
            tp, predicted, actual = (
                tp.sum(keepdims=True),
                predicted.sum(keepdims=True),
                actual.sum(keepdims=True),
            )
        per_class = self._per_class(tp, predicted.astype(float), actual.astype(float))
        if only is not None:
            return float(per_class[only])
        present = (predicted + actual) > 0
        if average == "weighted":
            return float((per_class * actual).sum() / actual.sum()) if actual.sum() else 0.0
        return float(per_class[present].mean()) if average == "macro" else float(per_class[0])

    def _per_class(
        self,
        tp: npt.NDArray[np.float64],
        predicted: npt.NDArray[np.float64],
        actual: npt.NDArray[np.float64],
    ) -> npt.NDArray[np.float64]:
        import numpy as np

        precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
        recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
        if self.name == "precision":
            return precision
        if self.name == "recall":
            return recall
        total = predicted + actual
        return np.divide(2 * tp, total, out=np.zeros_like(tp), where=total > 0)


@register
class Precision(_PrecisionRecallF):
    """Precision: of the cases predicted as a class, the share that belong to it."""

    name = "precision"
    function = "precision_score"


@register
class Recall(_PrecisionRecallF):
    """Recall: of the cases of a class, the share predicted as it."""

    name = "recall"
    function = "recall_score"


@register
class F1(_PrecisionRecallF):
    """F1: the harmonic mean of precision and recall."""

    name = "f1"
    function = "f1_score"


class _ScoreMetric(CorpusMetric):
    tasks = _CLASSIFICATION
    needs_scores = True
    options: ClassVar[Mapping[str, Option]] = {"positive": Option((str, int, float, bool), "1")}

    def _arrays(
        self, expected: Sequence[Any], scores: Sequence[Any] | None
    ) -> tuple[npt.NDArray[Any], npt.NDArray[np.float64], list[str] | None]:
        """Truths, a probability array and the class labels (None: binary, one number)."""
        import numpy as np

        if scores is None or any(s is None for s in scores):
            raise ValueError(f"{self.name} needs the endpoint's scores for every case")
        truths = [normalise_label(e) for e in expected]
        if all(isinstance(s, Mapping) for s in scores):
            labels = sorted({normalise_label(k) for s in scores for k in s} | set(truths))
            matrix = np.array(
                [[float(_by_label(s).get(label, 0.0)) for label in labels] for s in scores]
            )
            return np.array(truths, dtype=object), matrix, labels
        positive = normalise_label(self.settings["positive"])
        numbers = np.array([float(s) for s in scores])
        return np.array([t == positive for t in truths]), numbers, None


def _by_label(scores: Mapping[Any, Any]) -> dict[str, Any]:
    return {normalise_label(k): v for k, v in scores.items()}


@register
class RocAuc(_ScoreMetric):
    """Area under the ROC curve; one-vs-rest macro average for more than two classes."""

    name = "roc-auc"

    def statistic(
        self, predictions: Sequence[Any], expected: Sequence[Any], scores: Sequence[Any] | None
    ) -> Statistic:
        from sklearn import metrics as skm

        truths, probabilities, labels = self._arrays(expected, scores)
        if labels is not None and len(labels) == 2:
            truths, probabilities, labels = truths == labels[1], probabilities[:, 1], None
        everything = len(truths)

        def stat(idx: Indices) -> float:
            if labels is None and _all(idx, everything):
                return float(skm.roc_auc_score(truths, probabilities))  # the reported value
            if labels is None:
                return _mann_whitney_auc(truths[idx].astype(bool), probabilities[idx])
            rows = probabilities[idx]
            rows = rows / rows.sum(axis=1, keepdims=True)
            return float(skm.roc_auc_score(truths[idx], rows, multi_class="ovr", labels=labels))

        return stat


@register
class LogLoss(_ScoreMetric):
    """Cross-entropy of the predicted probabilities against the true classes."""

    name = "log-loss"
    scale = "value"
    higher_is_better = False

    def statistic(
        self, predictions: Sequence[Any], expected: Sequence[Any], scores: Sequence[Any] | None
    ) -> Statistic:
        import numpy as np
        from sklearn import metrics as skm

        truths, probabilities, labels = self._arrays(expected, scores)
        if labels is None:
            # The value is scikit-learn's; a resample averages the same per-record losses
            # (scikit-learn clips to [eps, 1 - eps]; a test holds the mean equal to it).
            eps = np.finfo(np.float64).eps
            clipped = np.clip(probabilities, eps, 1 - eps)
            losses = -np.where(truths.astype(bool), np.log(clipped), np.log1p(-clipped))
            everything = len(truths)

            def stat(idx: Indices) -> float:
                if _all(idx, everything):
                    return float(skm.log_loss(truths, probabilities, labels=[False, True]))
                return float(losses[idx].mean())

            return stat
        return lambda idx: float(skm.log_loss(truths[idx], probabilities[idx], labels=labels))


def _all(idx: Indices, n: int) -> bool:
    """Whether ``idx`` is every case in order: the reported value, not a resample."""
    import numpy as np

    return len(idx) == n and bool(np.array_equal(idx, np.arange(n)))


def _mann_whitney_auc(positive: npt.NDArray[np.bool_], scores: npt.NDArray[np.float64]) -> float:
    """ROC AUC as the Mann-Whitney U of the positives' scores over the negatives', divided
    by the number of pairs (ties count half): the same number as scikit-learn's, from one
    ``scipy.stats.rankdata``, which is what the bootstrap recomputes a thousand times."""
    from scipy import stats

    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC AUC needs both classes")
    # U of the positives: their rank sum (mid-ranks for ties) minus its minimum.
    u = stats.rankdata(scores)[positive].sum() - n_pos * (n_pos + 1) / 2
    return float(u) / (n_pos * n_neg)
