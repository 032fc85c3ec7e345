"""The canary's error rates against its stated alpha, by seeded simulation.

Each simulated canary watches production (accuracy ``--accuracy``) and a candidate
(``accuracy + delta``): at each of ``--looks`` polls, ``--batch`` new labelled records of
each model arrive and the canary's test (monitor.gate.sequential, the same functions
``monitor canary`` uses) looks at the counts so far, stopping at the first decision.

- false roll-back rate: delta = 0, the share of canaries rolled back (stated: <= alpha);
- missed-regression rate: delta < 0, the share NOT rolled back by the last look;
- the peer: a fixed-level two-proportion z-test (scipy) at the same looks, rolling back at
  the first one-sided p <= alpha: what a hand-written "watch it and check a threshold"
  script does; peeking inflates its false roll-backs.

Usage: PYTHONPATH=. python bench/canary_errors.py [--runs 4000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from monitor.gate.sequential import (
    MIN_LABELLED,
    confidence_halfwidth,
    difference,
)


def simulate(
    delta: float, runs: int, looks: int, batch: int, accuracy: float, alpha: float, tau: float
) -> dict[str, float]:
    """Roll-back shares of the mSPRT and of the peeking z-test, and the mSPRT's mean look
    at roll-back."""
    rng = np.random.default_rng(2022)
    right = np.cumsum(rng.binomial(batch, [accuracy, accuracy + delta], (runs, looks, 2)), axis=1)
    n = batch * np.arange(1, looks + 1, dtype=float)  # per model, at each look
    d, s2 = difference(right[..., 0], n, right[..., 1], n)
    # The running intersection of the confidence sequence: its upper end, look by look.
    upper = np.minimum.accumulate(d + confidence_halfwidth(s2, tau, alpha), axis=1)
    upper[:, n < MIN_LABELLED] = np.inf
    rolled = upper < 0
    first = np.where(rolled.any(axis=1), rolled.argmax(axis=1) + 1, 0)
    # The peer: a pooled two-proportion z-test at every look, one-sided.
    pooled = (right[..., 0] + right[..., 1]) / (2 * n)
    se = np.sqrt(np.maximum(pooled * (1 - pooled) * 2 / n, 1e-12))
    z_rolled = (stats.norm.cdf(d / se) <= alpha).any(axis=1)
    return {
        "msprt": float(rolled.any(axis=1).mean()),
        "peeking_z": float(z_rolled.mean()),
        "mean_look": float(first[first > 0].mean()) if (first > 0).any() else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=4000)
    parser.add_argument("--looks", type=int, default=60)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--accuracy", type=float, default=0.85)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--tau", type=float, default=0.05)
    args = parser.parse_args()
    total = args.looks * args.batch
    print(
        f"{args.runs} canaries, {args.looks} looks of {args.batch} labelled records per model"
        f" ({total} each by the end), production accuracy {args.accuracy}, alpha {args.alpha},"
        f" tau {args.tau}"
    )
    print(f"{'delta':>7}  {'rate':<20} {'mSPRT':>7} {'peeking z':>10} {'mean stop':>10}")
    started = time.perf_counter()
    for delta in (0.0, -0.01, -0.02, -0.03, -0.05, -0.10):
        r = simulate(delta, args.runs, args.looks, args.batch, args.accuracy, args.alpha, args.tau)
        if delta == 0:
            name, ours, peer = "false roll-back", r["msprt"], r["peeking_z"]
        else:
            name, ours, peer = "missed regression", 1 - r["msprt"], 1 - r["peeking_z"]
        stop = f"look {r['mean_look']:.1f}" if r["mean_look"] == r["mean_look"] else "-"
        print(f"{delta:>+7.2f}  {name:<20} {ours:>7.3f} {peer:>10.3f} {stop:>10}")
    print(f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
