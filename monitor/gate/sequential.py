"""The canary's sequential test: a mixture SPRT on the difference of two accuracies.

Johari, Koomen, Pekelis and Walsh, "Peeking at A/B Tests: Why It Matters, and What to Do
About It" (KDD 2017) and "Always Valid Inference: Continuous Monitoring of A/B Tests"
(Operations Research 70(3), 2022). With ``d`` the observed difference candidate minus
production and ``s2`` its variance, the mixture likelihood ratio of ``H0: diff = theta0``
against ``diff ~ N(theta0, tau**2)`` is (their eq. for the normal mixture, with ``s2``
standing for ``V / n``)::

    L(theta0) = sqrt(s2 / (s2 + tau2)) * exp(tau2 * (d - theta0)**2 / (2 * s2 * (s2 + tau2)))

The always-valid p-value is the running minimum of ``1 / L(0)``, and the set of ``theta0``
with ``L(theta0) < 1 / alpha``, ``d +- sqrt(s2 * (s2 + tau2) / tau2 * (log((s2 + tau2) /
s2) + 2 * log(1 / alpha)))``, intersected over time, is a confidence sequence: it covers the
true difference at every look at once with probability at least ``1 - alpha``. So peeking
at every poll keeps the stated error rate, and the canary may stop as soon as it is decisive.

Pure computation: numpy only, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "MIN_LABELLED",
    "Decision",
    "Evidence",
    "SequentialTest",
    "confidence_halfwidth",
    "difference",
    "mixture_likelihood_ratio",
]

Floats = npt.NDArray[np.float64]
Decision = Literal["rollback", "promote"]

MIN_LABELLED = 30
"""No decision before each model has this many labelled records: the normal approximation
of a proportion below it is poor."""


def difference(
    correct_production: npt.ArrayLike,
    n_production: npt.ArrayLike,
    correct_candidate: npt.ArrayLike,
    n_candidate: npt.ArrayLike,
) -> tuple[Floats, Floats]:
    """The difference of accuracies (candidate minus production) and its variance.

    The variance uses each accuracy shrunk by half a success and half a failure,
    ``(x + 0.5) / (n + 1)``, so a model right on every record so far does not get a zero
    variance (and an infinite likelihood ratio)."""
    xp, n_p = np.asarray(correct_production, float), np.asarray(n_production, float)
    xc, n_c = np.asarray(correct_candidate, float), np.asarray(n_candidate, float)
    delta = xc / n_c - xp / n_p
    pp, pc = (xp + 0.5) / (n_p + 1), (xc + 0.5) / (n_c + 1)
    variance = pp * (1 - pp) / n_p + pc * (1 - pc) / n_c
    return delta, variance


def mixture_likelihood_ratio(
    delta: npt.ArrayLike, variance: npt.ArrayLike, tau: float, theta0: float = 0.0
) -> Floats:
    """The normal-mixture likelihood ratio ``L(theta0)`` of the module docstring."""
    d, s2, tau2 = np.asarray(delta, float), np.asarray(variance, float), tau * tau
    exponent = tau2 * (d - theta0) ** 2 / (2 * s2 * (s2 + tau2))
    ratio: Floats = np.sqrt(s2 / (s2 + tau2)) * np.exp(exponent)
    return ratio


def confidence_halfwidth(variance: npt.ArrayLike, tau: float, alpha: float) -> Floats:
    """Half the width of the ``1 - alpha`` confidence set around the observed difference at
    one look: where ``L(theta0) = 1 / alpha``."""
    s2, tau2 = np.asarray(variance, float), tau * tau
    spread = np.log((s2 + tau2) / s2) + 2 * math.log(1 / alpha)
    half: Floats = np.sqrt(s2 * (s2 + tau2) / tau2 * spread)
    return half


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the canary knows after one look: the counts, the difference of accuracies
    (candidate minus production), the always-valid p-value of "no difference" and the
    always-valid confidence interval of the difference (running, so both only tighten)."""

    correct_production: int
    n_production: int
    correct_candidate: int
    n_candidate: int
    delta: float | None
    p_value: float
    lower: float
    upper: float

    @property
    def accuracy_production(self) -> float | None:
        return self.correct_production / self.n_production if self.n_production else None

    @property
    def accuracy_candidate(self) -> float | None:
        return self.correct_candidate / self.n_candidate if self.n_candidate else None


@dataclass(slots=True)
class SequentialTest:
    """The canary's test, looked at after each poll with the counts so far.

    Roll back when the confidence sequence lies wholly below 0 (the candidate is worse:
    equivalently the always-valid p-value is at most ``alpha`` and the difference is
    negative); promote early when it lies wholly above ``-margin`` (the candidate is not
    worse by more than ``margin``). Each wrong decision has probability at most ``alpha``
    however often one looks: a false roll-back when the models are equal, an early
    promotion when the candidate is really worse by more than ``margin``."""

    alpha: float
    tau: float
    margin: float = 0.0
    p_value: float = 1.0
    lower: float = -math.inf
    upper: float = math.inf
    looks: int = field(default=0)

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1, got: {self.alpha}")
        if self.tau <= 0:
            raise ValueError(f"tau must be positive, got: {self.tau}")
        if self.margin < 0:
            raise ValueError(f"margin must not be negative, got: {self.margin}")

    def look(
        self, correct_production: int, n_production: int, correct_candidate: int, n_candidate: int
    ) -> Evidence:
        """Update the running p-value and interval with the counts so far."""
        self.looks += 1
        delta: float | None = None
        if n_production > 0 and n_candidate > 0:
            d, s2 = difference(correct_production, n_production, correct_candidate, n_candidate)
            delta = float(d)
            if min(n_production, n_candidate) >= MIN_LABELLED:
                ratio = float(mixture_likelihood_ratio(d, s2, self.tau))
                half = float(confidence_halfwidth(s2, self.tau, self.alpha))
                self.p_value = min(self.p_value, 1 / ratio if ratio > 0 else 1.0)
                self.lower = max(self.lower, delta - half)
                self.upper = min(self.upper, delta + half)
        return Evidence(
            correct_production,
            n_production,
            correct_candidate,
            n_candidate,
            delta,
            min(self.p_value, 1.0),
            self.lower,
            self.upper,
        )

    @property
    def decision(self) -> Decision | None:
        """``rollback`` or ``promote`` once decisive, else ``None``."""
        if self.upper < 0:
            return "rollback"
        if self.lower > -self.margin:
            return "promote"
        return None
