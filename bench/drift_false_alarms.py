"""False alarms on unchanged data, and power on a small shift: ours (calibrated) vs Evidently.

For each distribution (normal, log-normal, heavy-tailed Student-t with 3 degrees of freedom,
categorical with 3, 10 and 50 levels), reference size and window size, fresh references and
windows are drawn from the SAME distribution; a flagged column-window is a false alarm.
Ours: ``compare`` in the default calibrated mode (false_alarm_rate 0.01), a column flagged
by its first method (ks / chi2), and per method. Evidently: its default stattest for the
same reference and window (``get_stattest(..., None)``: KS or chi-square p < 0.05 up to
1,000 reference rows, normed Wasserstein or Jensen-Shannon >= 0.1 above), the choice its
DataDriftPreset makes. Power: windows of 10,000 rows whose mean moved by 0.2 standard
deviations; a column-window flagged is a detection.

``--tied`` runs tied numerical data instead (Poisson(3), integers 0-9, normals rounded to
one decimal, log-normals rounded to two): the columns whose KS and Wasserstein nulls are
simulated jointly over their cut points (``calibrate._tied_plan``).

Usage: PYTHONPATH=. python bench/drift_false_alarms.py [--max-window 1000000] [--quick] [--tied]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable

import numpy as np

from monitor.drift import ColumnSpec, DriftSettings, build_profile, compare

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("EVIDENTLY_DISABLE_TELEMETRY", "1")

Sampler = Callable[[np.random.Generator, int], np.ndarray]


def _categorical(levels: int) -> Sampler:
    weights = np.random.default_rng(levels).dirichlet(np.ones(levels))
    names = np.array([f"c{i}" for i in range(levels)], dtype=object)

    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        return names[rng.choice(levels, n, p=weights)]

    return draw


DISTRIBUTIONS: dict[str, tuple[str, Sampler, float]] = {
    # name: (kind, sampler, standard deviation for the power shift)
    "normal": ("numerical", lambda rng, n: rng.normal(0, 1, n), 1.0),
    "lognormal": (
        "numerical",
        lambda rng, n: rng.lognormal(0, 1, n),
        float(np.sqrt((np.e - 1) * np.e)),
    ),
    "student-t3": ("numerical", lambda rng, n: rng.standard_t(3, n), float(np.sqrt(3))),
    "categorical-3": ("categorical", _categorical(3), 0.0),
    "categorical-10": ("categorical", _categorical(10), 0.0),
    "categorical-50": ("categorical", _categorical(50), 0.0),
}


TIED: dict[str, tuple[str, Sampler, float]] = {
    "poisson-3": ("numerical", lambda rng, n: rng.poisson(3.0, n).astype(float), 0.0),
    "integers-10": ("numerical", lambda rng, n: rng.integers(0, 10, n).astype(float), 0.0),
    "normal-1-decimal": ("numerical", lambda rng, n: np.round(rng.normal(0, 1, n), 1), 0.0),
    "lognormal-2-decimals": (
        "numerical",
        lambda rng, n: np.round(rng.lognormal(0, 1, n), 2),
        0.0,
    ),
}


def windows_for(size: int, quick: bool) -> int:
    """Windows per (reference, size): many small ones, a few huge ones. Several references
    matter more than many windows: given one reference, every window shares its sampling
    noise, so the false-alarm rate given that reference scatters around the nominal rate."""
    count = {100: 50, 1_000: 50, 10_000: 15, 100_000: 4, 1_000_000: 2}[size]
    return max(2, count // 3) if quick else count


def evidently_flags(kind: str, reference: np.ndarray, current: np.ndarray) -> tuple[bool, str]:
    import pandas as pd
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    column_type = ColumnType.Numerical if kind == "numerical" else ColumnType.Categorical
    ref, cur = pd.Series(reference), pd.Series(current)
    test = get_stattest(ref, cur, column_type, None)
    return bool(test(ref, cur, column_type, None).drifted), test.name


def run_cell(
    name: str, ref_size: int, size: int, references: int, quick: bool, evidently: bool
) -> dict[str, object]:
    kind, sample, _ = {**DISTRIBUTIONS, **TIED}[name]
    ours: list[bool] = []
    per_method: dict[str, list[bool]] = {}
    theirs: list[bool] = []
    method = ""
    for r in range(references):
        rng = np.random.default_rng([ref_size, size, r, len(name)])
        reference = sample(rng, ref_size)
        profile = build_profile({"x": reference}, [ColumnSpec("x", kind)], DriftSettings(seed=r))  # type: ignore[arg-type]
        for _ in range(windows_for(size, quick)):
            window = sample(rng, size)
            column = compare(profile, {"x": window}).columns[0]
            ours.append(column.drifted)
            for result in column.results:
                per_method.setdefault(result.method, []).append(result.drifted)
            if evidently and size <= 100_000:
                flagged, method = evidently_flags(kind, reference, window)
                theirs.append(flagged)
    return {
        "ours": float(np.mean(ours)),
        "n": len(ours),
        "worst_method": max((float(np.mean(v)), m) for m, v in per_method.items()),
        "evidently": float(np.mean(theirs)) if theirs else None,
        "evidently_method": method,
    }


def power(references: int, quick: bool) -> list[tuple[str, float, int]]:
    rows = []
    for name in ("normal", "lognormal", "student-t3"):
        _, sample, sd = DISTRIBUTIONS[name]
        flagged: list[bool] = []
        for r in range(references):
            rng = np.random.default_rng([7, r, len(name)])
            profile = build_profile({"x": sample(rng, 100_000)}, [ColumnSpec("x", "numerical")])
            for _ in range(10 if quick else 50):
                window = sample(rng, 10_000) + 0.2 * sd
                flagged.append(compare(profile, {"x": window}).columns[0].drifted)
        rows.append((name, float(np.mean(flagged)), len(flagged)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-window", type=int, default=1_000_000)
    parser.add_argument("--references", type=int, default=8)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--tied", action="store_true", help="tied numerical data instead")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    sizes = [s for s in (100, 1_000, 10_000, 100_000, 1_000_000) if s <= args.max_window]
    started = time.perf_counter()
    header = (
        "distribution",
        "reference rows",
        "window rows",
        "column-windows",
        "ours flagged",
        "ours worst method",
        "Evidently default",
        "Evidently flagged",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for ref_size in (1_000, 100_000):
        for name in TIED if args.tied else DISTRIBUTIONS:
            for size in sizes:
                evidently = not args.skip_evidently
                cell = run_cell(name, ref_size, size, args.references, args.quick, evidently)
                worst_rate, worst = cell["worst_method"]  # type: ignore[misc]
                theirs = cell["evidently"]
                their_text = "-" if theirs is None else f"{theirs:.1%}"
                their_method = cell["evidently_method"] or "-"
                print(
                    f"| {name} | {ref_size:,} | {size:,} | {cell['n']} | {cell['ours']:.1%} | "
                    f"{worst} {worst_rate:.1%} | {their_method} | {their_text} |",
                    flush=True,
                )
    if args.tied:
        print(f"\n(total {time.perf_counter() - started:.0f} s)")
        return
    print()
    print("| power: 0.2 SD mean shift, 10,000-row windows | windows | flagged |")
    print("|---|---|---|")
    for name, rate, n in power(args.references, args.quick):
        print(f"| {name} | {n} | {rate:.1%} |")
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
