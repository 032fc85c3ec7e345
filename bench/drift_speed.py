"""Drift engine speed and memory, side by side with Evidently's DataDriftPreset in one run.

Same seeded data for both: ``--rows`` reference rows and as many current rows, with
``--numerical`` normal-ish columns and ``--categorical`` columns of 3 to 50 levels. Ours runs
all default methods (numerical: ks, wasserstein, psi, jensenshannon, hellinger; categorical:
chi2, jensenshannon, psi, linf) in the default calibrated mode; Evidently runs its defaults
(one method per column). Reported:

- ours: building the profile (once per reference), the first window (which calibrates the
  thresholds for that window size) and a repeated window of the same size (median of 3);
- Evidently: ``Report([DataDriftPreset()]).run(current, reference)``, once;
- the ratio Evidently / ours for the repeated window and for profile + first window;
- NannyML (``UnivariateDriftCalculator``, its default methods, one chunk) and frouros (a KS
  test per numerical column, chi-square per categorical) when installed (they are not in
  the lock: ``pip install nannyml frouros`` into a separate environment to measure), fit
  plus compare, against our profile + first window;
- peak memory of ours (tracemalloc, which sees numpy's buffers) during profile + compare,
  against the raw data (the input arrays' nbytes: 8 bytes per value, category strings
  shared);
- with ``--segments N``: the data gets a categorical ``segment`` column of N values of
  uneven frequency, and drift per segment (``monitor.drift.segments``, ``max_segments = N``)
  is timed the same way: the segment profiles, the first window (which calibrates every
  segment's window size) and a repeated window, against the whole window's repeated
  comparison in the same run (the ratio is what segments add to a window's cost).

By default both sides first run once, untimed, on other data of 90% the size: a daemon is a
warm process, and a fresh one pays one-off costs that are not the engine's (the allocator's
first big blocks and their page faults, thread start-up, first calls into scipy and
pandas): at 1M rows they double our first profile and window. The warm-up shares nothing
with the timed runs (another profile, other window sizes, so nothing calibrated ahead).
``--no-warmup`` times a fresh process instead.

Usage: python bench/drift_speed.py --rows 100000 --numerical 20 --categorical 0 [--tied 6]
       python bench/drift_speed.py --rows 100000 --numerical 20 --segments 10 --skip-evidently
       python bench/drift_speed.py --rows 1000000 --numerical 20 --categorical 5
       (add --no-warmup to time a fresh process)
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc
import warnings

import numpy as np

from monitor.drift import ColumnSpec, DriftSettings, build_profile, compare
from monitor.drift.segments import build_segment_profiles, compare_segments

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("EVIDENTLY_DISABLE_TELEMETRY", "1")
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")


def make_data(
    rows: int, numerical: int, categorical: int, seed: int, tied: int = 0
) -> tuple[dict[str, np.ndarray], list[ColumnSpec]]:
    """Seeded columns: normal, log-normal and Student-t numericals (the first ``tied`` of
    them rounded to 0, 1 or 2 decimals, as measured data is); categoricals of 3 to 50
    levels with uneven frequencies (levels as shared Python strings in object arrays)."""
    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {}
    columns = []
    for i in range(numerical):
        kind = i % 3
        if kind == 0:
            data[f"num{i}"] = rng.normal(i, 1 + i / 10, rows)
        elif kind == 1:
            data[f"num{i}"] = rng.lognormal(0, 0.5, rows)
        else:
            data[f"num{i}"] = rng.standard_t(5, rows)
        if i < tied:
            data[f"num{i}"] = np.round(data[f"num{i}"], i % 3)
        columns.append(ColumnSpec(f"num{i}", "numerical"))
    for j in range(categorical):
        levels = np.array([f"level{k}" for k in range(3 + j * 47 // max(categorical - 1, 1))])
        weights = rng.dirichlet(np.ones(levels.size) * 2)
        data[f"cat{j}"] = levels[rng.choice(levels.size, rows, p=weights)].astype(object)
        columns.append(ColumnSpec(f"cat{j}", "categorical"))
    return data, columns


def time_ours(
    reference: dict[str, np.ndarray], current: dict[str, np.ndarray], columns: list[ColumnSpec]
) -> dict[str, float]:
    start = time.perf_counter()
    profile = build_profile(reference, columns, DriftSettings())
    built = time.perf_counter()
    compare(profile, current)
    first = time.perf_counter()
    repeats = []
    for _ in range(3):
        t0 = time.perf_counter()
        compare(profile, current)
        repeats.append(time.perf_counter() - t0)
    return {
        "profile": built - start,
        "first": first - built,
        "repeat": statistics.median(repeats),
    }


def add_segments(
    data: dict[str, np.ndarray], columns: list[ColumnSpec], segments: int, seed: int
) -> None:
    """A categorical ``segment`` column of ``segments`` values, the same uneven
    frequencies in every data set of the run (``seed``), drawn per row."""
    weights = np.random.default_rng(99).dirichlet(np.ones(segments) * 2)
    levels = np.array([f"seg{k}" for k in range(segments)], dtype=object)
    rows = len(next(iter(data.values())))
    data["segment"] = levels[np.random.default_rng(seed).choice(segments, rows, p=weights)]
    columns.append(ColumnSpec("segment", "categorical"))


def time_segments(
    reference: dict[str, np.ndarray],
    current: dict[str, np.ndarray],
    columns: list[ColumnSpec],
    segments: int,
) -> dict[str, float]:
    """Drift per segment of the ``segment`` column, timed as ``time_ours``."""
    start = time.perf_counter()
    profiles = build_segment_profiles(reference, columns, DriftSettings(), "segment", segments)
    built = time.perf_counter()
    compare_segments(profiles, current)
    first = time.perf_counter()
    repeats = []
    for _ in range(3):
        t0 = time.perf_counter()
        compare_segments(profiles, current)
        repeats.append(time.perf_counter() - t0)
    return {
        "profile": built - start,
        "first": first - built,
        "repeat": statistics.median(repeats),
    }


def peak_memory(
    reference: dict[str, np.ndarray], current: dict[str, np.ndarray], columns: list[ColumnSpec]
) -> int:
    """Peak traced bytes above the inputs while profiling and comparing."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    profile = build_profile(reference, columns, DriftSettings(seed=1))
    compare(profile, current)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


def time_evidently(
    reference: dict[str, np.ndarray], current: dict[str, np.ndarray], columns: list[ColumnSpec]
) -> float:
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        definition = DataDefinition(
            numerical_columns=[c.name for c in columns if c.kind == "numerical"],
            categorical_columns=[c.name for c in columns if c.kind == "categorical"],
        )
        ref = Dataset.from_pandas(pd.DataFrame(reference), data_definition=definition)
        cur = Dataset.from_pandas(pd.DataFrame(current), data_definition=definition)
        start = time.perf_counter()
        Report([DataDriftPreset()]).run(cur, ref)
        return time.perf_counter() - start


def time_nannyml(
    reference: dict[str, np.ndarray], current: dict[str, np.ndarray], columns: list[ColumnSpec]
) -> float:
    """NannyML's UnivariateDriftCalculator with its default methods, the current data as
    one chunk: fit on the reference, then calculate (both timed, as ours)."""
    import nannyml
    import pandas as pd

    ref, cur = pd.DataFrame(reference), pd.DataFrame(current)
    start = time.perf_counter()
    calculator = nannyml.UnivariateDriftCalculator(
        column_names=[c.name for c in columns], chunk_number=1
    )
    calculator.fit(ref)
    calculator.calculate(cur)
    return time.perf_counter() - start


def time_frouros(
    reference: dict[str, np.ndarray], current: dict[str, np.ndarray], columns: list[ColumnSpec]
) -> float:
    """frouros: a KS test per numerical column and a chi-square test per categorical one
    (its batch detectors), fit on the reference then compared."""
    from frouros.detectors.data_drift import ChiSquareTest, KSTest

    start = time.perf_counter()
    for c in columns:
        detector = KSTest() if c.kind == "numerical" else ChiSquareTest()
        detector.fit(X=reference[c.name])
        detector.compare(X=current[c.name])
    return time.perf_counter() - start


PEERS = {"nannyml": time_nannyml, "frouros": time_frouros}


def warm_up(rows: int, numerical: int, categorical: int, evidently: bool) -> None:
    """One untimed comparison on each side, on other data of 90% the size."""
    size = rows * 9 // 10
    reference, columns = make_data(size, numerical, categorical, seed=11)
    current, _ = make_data(size, numerical, categorical, seed=12)
    compare(build_profile(reference, columns, DriftSettings(seed=11)), current)
    if evidently:
        time_evidently(reference, current, columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--numerical", type=int, default=20)
    parser.add_argument("--categorical", type=int, default=0)
    parser.add_argument("--tied", type=int, default=0, help="numerical columns with ties")
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument(
        "--segments", type=int, default=0, help="also time drift per segment of N values"
    )
    args = parser.parse_args()
    if not args.no_warmup:
        warm_up(args.rows, args.numerical, args.categorical, not args.skip_evidently)
    reference, columns = make_data(args.rows, args.numerical, args.categorical, 1, args.tied)
    current, _ = make_data(args.rows, args.numerical, args.categorical, 2, args.tied)
    if args.segments:
        add_segments(reference, columns, args.segments, seed=1)
        add_segments(current, [], args.segments, seed=2)
    raw = sum(a.nbytes for a in reference.values()) + sum(a.nbytes for a in current.values())
    ours = time_ours(reference, current, columns)
    peak = peak_memory(reference, current, columns)
    shape = (
        f"{args.rows:,} + {args.rows:,} rows x ({args.numerical} num, {args.tied} of them "
        f"tied, + {args.categorical} cat)"
    )
    warm = "cold process" if args.no_warmup else "warm process"
    print(f"data: {shape}; raw data {raw / 2**20:,.0f} MiB; cpus {os.cpu_count()}; {warm}")
    print(
        f"ours: profile {ours['profile']:.3f} s, first window {ours['first']:.3f} s, "
        f"repeated window {ours['repeat']:.3f} s"
    )
    print(f"ours: peak traced memory {peak / 2**20:,.0f} MiB = {peak / raw:.2f}x the raw data")
    if args.segments:
        seg = time_segments(reference, current, columns, args.segments)
        print(
            f"segments ({args.segments}): profiles {seg['profile']:.3f} s, first window "
            f"{seg['first']:.3f} s, repeated window {seg['repeat']:.3f} s = "
            f"{seg['repeat'] / ours['repeat']:.2f}x the whole window's repeated window, "
            f"{(seg['profile'] + seg['first']) / (ours['profile'] + ours['first']):.2f}x its "
            "profile + first window"
        )
    if not args.skip_evidently:
        theirs = time_evidently(reference, current, columns)
        cold = ours["profile"] + ours["first"]
        print(f"evidently DataDriftPreset: {theirs:.2f} s")
        print(
            f"ratio evidently/ours: {theirs / ours['repeat']:.0f}x (repeated window), "
            f"{theirs / cold:.0f}x (profile + first window)"
        )
    cold = ours["profile"] + ours["first"]
    for name, timer in PEERS.items():
        # optional peers, not in the lock: measured where installed
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                peer = timer(reference, current, columns)
        except ImportError as exc:
            print(f"{name}: skipped ({exc.name or name} is not installed)")
            continue
        print(f"{name}: {peer:.2f} s = {peer / cold:.1f}x ours (profile + first window)")


if __name__ == "__main__":
    main()
