"""How a judge-scored gate behaves: false regressions on an unchanged model and power on a
real 5-point drop, for a judge with a known error rate, at n = 200 and 500 paired cases,
with ``judge_repeats`` 1 and 3 (majority).

Simulation: each case has its own probability of being answered well, p_i ~ Beta with mean
0.8 and concentration 1 (a mix of easy, hard and coin-flip cases), and each run draws per
case whether the answer is good. The degraded model also answers a random 6.25% of the
cases badly (0.8 * 0.0625 = a true drop of 5 points). A binary ``rubric`` judge sees the
true quality and reports it wrongly with probability ``e`` (0.1 or 0.2), independently on
every judgement and in every run: the worst case for a gate, since a judge at temperature
0 repeats its errors on the same answer and they then cancel in the paired comparison.
With ``judge_repeats = 3`` the case's score is the majority of 3 judgements. The verdict is
the gate's own (``monitor.verdicts.judge``: one-sided exact McNemar, alpha = 0.05).

Beside it, the rule most judge-based gates apply, "regressed if the new mean score is
below the baseline's".

    PYTHONPATH=. python bench/judge_quality.py [--runs 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from monitor.verdicts import Comparison, judge

KAPPA = 1.0
DROP_SHARE = 0.0625


def judged(rng: np.random.Generator, good: np.ndarray, error: float, repeats: int) -> np.ndarray:
    """The judge's 0/1 scores of answers whose true quality is ``good``: each of
    ``repeats`` judgements wrong with probability ``error``, reduced by majority."""
    wrong = rng.random((repeats, len(good))) < error
    votes = np.where(wrong, 1 - good, good).sum(axis=0)
    return (votes * 2 > repeats).astype(float)


def simulate(
    rng: np.random.Generator, cases: int, error: float, repeats: int, drop: bool
) -> tuple[bool, bool]:
    p = rng.beta(0.8 * KAPPA, 0.2 * KAPPA, cases)
    base_good = (rng.random(cases) < p).astype(float)
    p_new = p.copy()
    if drop:
        p_new[rng.random(cases) < DROP_SHARE] = 0.0
    new_good = (rng.random(cases) < p_new).astype(float)
    base = judged(rng, base_good, error, repeats)
    new = judged(rng, new_good, error, repeats)
    ids = [str(i) for i in range(cases)]
    comparison = Comparison(
        "rubric", "binary", dict(zip(ids, base, strict=True)), dict(zip(ids, new, strict=True))
    )
    (verdict,) = judge([comparison], {})
    return verdict.outcome == "regressed", bool(new.mean() < base.mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(20261202)
    print(f"{args.runs} simulated runs per cell, alpha = 0.05, kappa = {KAPPA:g}")
    print(
        "| judge error | n | judge_repeats | unchanged: ours | unchanged: new < baseline"
        " | 5-pt drop: ours | 5-pt drop: new < baseline |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    started = time.perf_counter()
    for error in (0.1, 0.2):
        for cases in (200, 500):
            for repeats in (1, 3):
                cells = []
                for drop in (False, True):
                    flags = np.array(
                        [simulate(rng, cases, error, repeats, drop) for _ in range(args.runs)]
                    )
                    cells += [flags[:, 0].mean(), flags[:, 1].mean()]
                shown = " | ".join(f"{x:.1%}" for x in cells)
                print(f"| {error:g} | {cases} | {repeats} | {shown} |")
    print(f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
