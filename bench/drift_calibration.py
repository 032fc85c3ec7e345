"""Calibrated thresholds against direct simulation, and what calibrating costs.

For each distribution (normal, log-normal, Student-t with 3 degrees of freedom) and
(reference rows, window rows): ``--pairs`` null pairs of a fresh reference and a fresh
window drawn from the TRUE distribution, each statistic computed exactly as ``compare`` does
(bins from that pair's reference); then, for three other references, the calibrated
thresholds (calibrate.thresholds, one column) and the share of the null pairs above them.
A threshold is right when about ``false_alarm_rate`` (1%) of the pairs exceed it; the
Monte-Carlo noise of one share is about 0.2 points. "ms" is the time to calibrate the five
numerical methods for one column at that size.

Usage: PYTHONPATH=. python bench/drift_calibration.py [--pairs 4000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from monitor.drift import ColumnSpec, DriftSettings, Method, build_profile, calibrate
from monitor.drift import stats as drift_stats
from monitor.drift.profile import NumericalProfile, bin_counts

DISTRIBUTIONS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "normal": lambda rng, n: rng.normal(size=n),
    "lognormal": lambda rng, n: rng.lognormal(size=n),
    "student-t3": lambda rng, n: rng.standard_t(3, size=n),
}
METHODS: tuple[Method, ...] = ("ks", "wasserstein", "psi", "jensenshannon", "hellinger")
SIZES = [(1_000, 100), (1_000, 1_000), (1_000, 10_000), (20_000, 10_000), (100_000, 1_000)]
LARGE = (100_000, 100_000)  # a quarter of the pairs: each one sorts 200,000 values


def null_statistics(name: str, n: int, m: int, pairs: int) -> dict[Method, np.ndarray]:
    rng = np.random.default_rng(99)
    sample = DISTRIBUTIONS[name]
    out: dict[Method, list[float]] = {method: [] for method in METHODS}
    for _ in range(pairs):
        num = NumericalProfile.build(sample(rng, n), 20, "x")
        window = np.sort(sample(rng, m))
        d, w = drift_stats.ks_wasserstein(num.sorted_values, window)
        out["ks"].append(d)
        out["wasserstein"].append(drift_stats.normalised_wasserstein(w, num.std))
        ref, cur = num.bins()[None, :], bin_counts(window, num.edges)[None, :]
        for method in ("psi", "jensenshannon", "hellinger"):
            out[method].append(float(drift_stats.BINNED[method](ref, cur)[0]))
    return {method: np.array(values) for method, values in out.items()}


def check(name: str, n: int, m: int, pairs: int, references: int = 3) -> str:
    null = null_statistics(name, n, m, pairs)
    shares: dict[Method, list[float]] = {method: [] for method in METHODS}
    elapsed = 0.0
    for r in range(references):
        reference = DISTRIBUTIONS[name](np.random.default_rng(1000 + r), n)
        spec = [ColumnSpec("x", "numerical")]
        profile = build_profile({"x": reference}, spec, DriftSettings(seed=r))
        start = time.perf_counter()
        limits = calibrate.thresholds(profile, "x", METHODS, m)
        elapsed += time.perf_counter() - start
        for method in METHODS:
            shares[method].append(float(np.mean(null[method] > limits[method])))
    cells = " | ".join(f"{np.mean(shares[method]):.2%}" for method in METHODS)
    return f"| {name} | {n:,} | {m:,} | {pairs:,} | {elapsed / references * 1e3:.0f} | {cells} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4_000)
    args = parser.parse_args()
    print(
        "| distribution | reference rows | window rows | null pairs | ms | "
        + " | ".join(METHODS)
        + " |"
    )
    print("|" + "---|" * (5 + len(METHODS)))
    for n, m in [*SIZES, LARGE]:
        pairs = args.pairs // 4 if (n, m) == LARGE else args.pairs
        for name in DISTRIBUTIONS:
            print(check(name, n, m, pairs), flush=True)


if __name__ == "__main__":
    main()
