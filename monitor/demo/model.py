"""The demo model: a real scikit-learn wine classifier that can be made to get worse.

``monitor demo`` needs something to watch that behaves like a production model and, on
demand, regresses. :class:`DemoModel` trains a StandardScaler + LogisticRegression pipeline
at construction on every wine row that is *not* in the bundled held-out suite, so the
daemon's evaluation never scores training data.

Degradation is deterministic so that a regression is reproducible, not noise: at level
``p`` an input is corrupted when a stable hash of its rounded features, read as a number
in [0, 1), falls below ``p``. The same input at the same level always gets the same
answer, and raising the level only ever adds corrupted inputs. A corrupted prediction is
swapped for another class (also chosen by the hash) and the two classes' probabilities are
swapped with it, so the returned label is still the most probable class.

The level follows a time ramp (0 until ``degrade_after``, then linear up to ``max_level``
over ``degrade_ramp``, and back to 0 at once from ``recover_after``: a rollback) unless
:meth:`DemoModel.set_level` forces it. Times count from construction, or from
:meth:`DemoModel.restart_clock` (``monitor demo`` calls it once the daemon serves).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from datetime import timedelta

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from monitor.demo.dataset import N_FEATURES, WineData, held_out_ids, load_wine_data

DEFAULT_DEGRADE_RAMP = timedelta(minutes=5)
DEFAULT_MAX_LEVEL = 0.6
_HASH_DECIMALS = 6  # features are rounded first so float noise cannot flip the decision


class DemoModel:
    """A wine classifier trained at construction, with a switch that degrades it.

    Args:
        degrade_after: time after construction when the ramp starts; ``None`` never
            degrades on its own (only :meth:`set_level` does).
        degrade_ramp: how long the level takes to climb from 0 to ``max_level``.
        recover_after: time after the start when the model is healthy again (level 0);
            ``None`` never recovers. Must come after ``degrade_after``.
        max_level: the level the ramp ends at, a share of inputs in [0, 1].
        clock: monotonic seconds; injected so tests can move time by hand.
        random_state: seed of the classifier, fixed so every start trains the same model.
    """

    def __init__(
        self,
        *,
        degrade_after: timedelta | None = None,
        degrade_ramp: timedelta = DEFAULT_DEGRADE_RAMP,
        recover_after: timedelta | None = None,
        max_level: float = DEFAULT_MAX_LEVEL,
        clock: Callable[[], float] = time.monotonic,
        random_state: int = 0,
    ) -> None:
        _check_schedule(degrade_after, degrade_ramp, recover_after, max_level)
        self._degrade_after = degrade_after
        self._degrade_ramp = degrade_ramp
        self._recover_after = recover_after
        self._max_level = max_level
        self._clock = clock
        self._forced_level: float | None = None
        data = load_wine_data()
        self._labels = data.target_names
        self._training_ids, x, y = _training_rows(data)
        self._pipeline = _fit(x, y, random_state)
        self._started = clock()

    @property
    def labels(self) -> tuple[str, ...]:
        """The class names, in the order of the probability vector."""
        return self._labels

    @property
    def training_ids(self) -> frozenset[str]:
        """Ids (``wine-<row>``) of the rows the model was trained on."""
        return self._training_ids

    def restart_clock(self) -> None:
        """Count ``degrade_after`` and ``recover_after`` from now."""
        self._started = self._clock()

    def level(self) -> float:
        """The current degradation level: the share of inputs that get a wrong class."""
        if self._forced_level is not None:
            return self._forced_level
        if self._degrade_after is None:
            return 0.0
        since_start = self._clock() - self._started
        if self._recover_after is not None and since_start >= self._recover_after.total_seconds():
            return 0.0
        elapsed = since_start - self._degrade_after.total_seconds()
        if elapsed < 0:
            return 0.0
        ramp = self._degrade_ramp.total_seconds()
        progress = 1.0 if ramp == 0 else min(1.0, elapsed / ramp)
        return self._max_level * progress

    def set_level(self, level: float | None) -> None:
        """Force the degradation level (0..1), overriding the time ramp; ``None`` hands
        control back to the ramp."""
        if level is not None and not 0.0 <= level <= 1.0:
            raise ValueError(f"degradation level must be between 0 and 1, got: {level}")
        self._forced_level = level

    def predict(self, features: Sequence[float]) -> tuple[str, dict[str, float]]:
        """Classify one wine; returns the label and the probability of every class.

        Raises ``ValueError`` unless ``features`` holds exactly 13 finite numbers.
        """
        row = _as_row(features)
        probabilities = self._pipeline.predict_proba(row)[0].astype(np.float64)
        predicted = int(np.argmax(probabilities))
        wrong = _corrupted_class(row[0], predicted, len(self._labels), self.level())
        if wrong is not None:
            probabilities[[predicted, wrong]] = probabilities[[wrong, predicted]]
            predicted = wrong
        named = {name: float(p) for name, p in zip(self._labels, probabilities, strict=True)}
        return self._labels[predicted], named

    def predict_healthy_many(self, features: npt.NDArray[np.float64]) -> list[str]:
        """The class the model gives each row of ``features`` (n x 13) at degradation
        level 0: the demo's shadow model, a candidate that never degrades."""
        probabilities = self._pipeline.predict_proba(features)
        return [self._labels[int(i)] for i in np.argmax(probabilities, axis=1)]


def _check_schedule(
    degrade_after: timedelta | None,
    degrade_ramp: timedelta,
    recover_after: timedelta | None,
    max_level: float,
) -> None:
    """Reject a degradation schedule that cannot mean anything."""
    if degrade_after is not None and degrade_after < timedelta(0):
        raise ValueError(f"degrade_after must not be negative, got: {degrade_after}")
    if recover_after is not None and (degrade_after is None or recover_after <= degrade_after):
        raise ValueError(
            f"recover_after must come after degrade_after, got: {recover_after}"
            f" (degrade_after: {degrade_after})"
        )
    if degrade_ramp < timedelta(0):
        raise ValueError(f"degrade_ramp must not be negative, got: {degrade_ramp}")
    if not 0.0 <= max_level <= 1.0:
        raise ValueError(f"max_level must be between 0 and 1, got: {max_level}")


def _training_rows(
    data: WineData,
) -> tuple[frozenset[str], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Every row whose id is not in the bundled held-out suite, with those rows' ids."""
    excluded = held_out_ids()
    keep = [i for i in range(len(data.y)) if data.row_id(i) not in excluded]
    return frozenset(data.row_id(i) for i in keep), data.x[keep], data.y[keep]


def _fit(x: npt.NDArray[np.float64], y: npt.NDArray[np.int64], random_state: int) -> Pipeline:
    """Train the scaler + logistic regression pipeline (a few milliseconds on 118 rows)."""
    pipeline = Pipeline(
        [
            ("scale", StandardScaler()),
            ("classify", LogisticRegression(max_iter=1000, random_state=random_state)),
        ]
    )
    return pipeline.fit(x, y)


def _as_row(features: Sequence[float]) -> npt.NDArray[np.float64]:
    """``features`` as a 1 x 13 float array, or ``ValueError`` saying what is wrong."""
    if isinstance(features, str | bytes) or len(features) != N_FEATURES:
        raise ValueError(f"features must be {N_FEATURES} numbers, got: {features!r}")
    try:
        row = np.asarray(features, dtype=np.float64).reshape(1, N_FEATURES)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"features must be {N_FEATURES} numbers, got: {features!r}") from exc
    if not np.all(np.isfinite(row)):
        raise ValueError(f"features must be finite numbers, got: {features!r}")
    return row


def _corrupted_class(
    features: npt.NDArray[np.float64], predicted: int, n_classes: int, level: float
) -> int | None:
    """The wrong class to answer with at ``level``, or ``None`` to keep the prediction.

    The first 8 bytes of a blake2b digest of the rounded features decide *whether* (a
    uniform number below ``level``), the next 8 decide *which* other class, so the choice
    depends on the input alone and never on the call order.
    """
    if level <= 0.0:
        return None
    text = ",".join(f"{round(float(v), _HASH_DECIMALS) + 0.0:.{_HASH_DECIMALS}f}" for v in features)
    digest = hashlib.blake2b(text.encode("ascii"), digest_size=16).digest()
    uniform = int.from_bytes(digest[:8], "big") / 2.0**64
    if uniform >= level:
        return None
    offset = 1 + int.from_bytes(digest[8:], "big") % (n_classes - 1)
    return (predicted + offset) % n_classes
