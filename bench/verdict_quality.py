"""Statistical quality of the verdict: false regressions on an unchanged model, and power
against a real 5-point accuracy drop, at n = 500 paired cases.

Simulation: each case has its own probability of being answered right, p_i ~ Beta with mean
0.8 and concentration kappa (small kappa: most cases are reliably right or wrong; large
kappa: every case is a coin flip with p ~ 0.8, the noisiest classifier). Each run draws
per-case Bernoulli correctness. The baseline and the new run are independent draws; the
degraded model additionally fails a random 6.25% of the cases (0.8 * 0.0625 = 5 points).

Beside ours: the raw rule most eval harnesses gate on, "regressed if new < baseline", and
the power no level-0.05 test can beat at that noise: the one-sided z-test that knows the
true variance of the paired difference, Phi(0.05 / sqrt(d / n) - z_0.95), with d the
simulated share of discordant cases.

    python bench/verdict_quality.py [--runs 1000] [--cases 500]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from monitor.verdicts import Comparison, judge


def simulate(
    rng: np.random.Generator, kappa: float, cases: int, drop: bool
) -> tuple[bool, bool, float]:
    p = rng.beta(0.8 * kappa, 0.2 * kappa, cases)
    base = (rng.random(cases) < p).astype(float)
    p_new = p.copy()
    if drop:
        p_new[rng.random(cases) < 0.0625] = 0.0
    new = (rng.random(cases) < p_new).astype(float)
    ids = [str(i) for i in range(cases)]
    comparison = Comparison(
        "accuracy", "binary", dict(zip(ids, base, strict=True)), dict(zip(ids, new, strict=True))
    )
    (verdict,) = judge([comparison], {})
    discordant = float(np.mean(base != new))
    return verdict.outcome == "regressed", new.mean() < base.mean(), discordant


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--cases", type=int, default=500)
    args = parser.parse_args()
    rng = np.random.default_rng(20261122)
    print(f"{args.runs} simulated runs per cell, n = {args.cases} paired cases, alpha = 0.05")
    columns = [
        "unchanged: ours",
        "unchanged: new < baseline",
        "5-pt drop: ours",
        "5-pt drop: new < baseline",
        "5-pt drop: best possible",
    ]
    print("| kappa | " + " | ".join(columns) + " |")
    print("| --- | --- | --- | --- | --- | --- |")
    started = time.perf_counter()
    for kappa in (0.5, 1.0, 2.0, 5.0, 1000.0):
        cells = []
        for drop in (False, True):
            flags = np.array([simulate(rng, kappa, args.cases, drop) for _ in range(args.runs)])
            cells += [flags[:, 0].mean(), flags[:, 1].mean()]
        discordance = flags[:, 2].mean()
        z = 0.05 / np.sqrt(discordance / args.cases) - stats.norm.ppf(0.95)
        cells.append(float(stats.norm.cdf(z)))
        print(f"| {kappa:g} | " + " | ".join(f"{x:.1%}" for x in cells) + " |")
    print(f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
