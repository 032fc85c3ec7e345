"""Comparing a window with a reference profile: measure every column, then decide.

Columns are measured in parallel on a thread pool (sorting, searching and bin counting run
in numpy without the GIL); the decision step then applies the thresholds of the chosen mode.
In ``p-value`` mode the correction needs every column's p-value, which is why measuring and
deciding are separate steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from monitor.drift import calibrate, measure, text
from monitor.drift.corrections import adjust
from monitor.drift.measure import Measured
from monitor.drift.parallel import run_all
from monitor.drift.profile import ReferenceProfile, _row_count
from monitor.drift.types import (
    TEST_METHODS,
    ColumnCounts,
    ColumnDrift,
    ColumnSpec,
    DriftResult,
    MethodResult,
)

Task = Callable[[], list[Measured]]


def compare(profile: ReferenceProfile, current: Mapping[str, np.ndarray]) -> DriftResult:
    """The drift of the window ``current`` (column name -> values) against ``profile``.
    Numerical missing values are NaN (infinities count as missing too); categorical and text
    missing values are None, NaN or ""."""
    n_rows = _row_count(current, profile.columns)
    if n_rows < profile.settings.min_rows:
        return _insufficient(n_rows)
    # Counting categories and describing texts hold the GIL: they start first, so that the
    # numerical columns (numpy, GIL released) fill the other threads meanwhile.
    specs = sorted(profile.columns, key=lambda spec: spec.kind == "numerical")
    tasks = [_raw_task(profile, spec, current[spec.name]) for spec in specs]
    results = run_all(tasks, profile.settings.workers)
    done = {spec.name: result for spec, result in zip(specs, results, strict=True)}
    measured = [m for spec in profile.columns for m in done[spec.name]]
    return _decide(profile, n_rows, measured)


def compare_counts(
    profile: ReferenceProfile, counts: Mapping[str, ColumnCounts], n_rows: int
) -> DriftResult:
    """The drift of a window given as counts (SQL push-down): numerical columns give counts
    per profile bin plus missing, categorical ones category -> count plus missing.

    The binned methods (psi, jensenshannon, hellinger, chi2, linf) give exactly what
    ``compare`` gives on the same data. KS and Wasserstein need raw values and are skipped
    with a note in ``ColumnDrift.notes``; ``drifted`` then follows the first method that was
    computed. The out-of-range share is unknown from counts (None). Text columns take part
    only through descriptor counts keyed ``"<column>:<descriptor>"``, when given.
    """
    if n_rows < profile.settings.min_rows:
        return _insufficient(n_rows)
    measured: list[Measured] = []
    for spec in profile.columns:
        measured.extend(_counts_columns(profile, spec, counts))
    return _decide(profile, n_rows, measured)


def _raw_task(profile: ReferenceProfile, spec: ColumnSpec, values: np.ndarray) -> Task:
    methods = spec.resolved_methods()
    if spec.kind == "numerical":
        num = profile.numerical[spec.name]
        exact = profile.settings.ks_exact_max_en
        return lambda: [measure.numerical(spec.name, num, values, methods, None, exact)]
    if spec.kind == "categorical":
        cat = profile.categorical[spec.name]
        return lambda: [measure.categorical(spec.name, cat, values, methods)]

    def text_task() -> list[Measured]:
        vocab = profile.vocabularies[spec.name]
        described = text.describe(np.asarray(values, dtype=object), vocab)
        out = []
        for descriptor, array in described.items():
            name = text.descriptor_name(spec.name, descriptor)
            num = profile.numerical[name]
            exact = profile.settings.ks_exact_max_en
            out.append(measure.numerical(name, num, array, methods, spec.name, exact))
        return out

    return text_task


def _counts_columns(
    profile: ReferenceProfile, spec: ColumnSpec, counts: Mapping[str, ColumnCounts]
) -> list[Measured]:
    methods = spec.resolved_methods()
    if spec.kind == "text":
        out = []
        for descriptor in text.DESCRIPTORS:
            name = text.descriptor_name(spec.name, descriptor)
            if name in counts:
                given = _bins_of(name, counts[name])
                num = profile.numerical[name]
                out.append(
                    measure.numerical_counts(
                        name, num, given, counts[name].missing, methods, source=spec.name
                    )
                )
        return out
    if spec.name not in counts:
        raise ValueError(f"counts lack column {spec.name!r}; got: {sorted(counts)}")
    column = counts[spec.name]
    if spec.kind == "numerical":
        num = profile.numerical[spec.name]
        bins = _bins_of(spec.name, column)
        return [measure.numerical_counts(spec.name, num, bins, column.missing, methods)]
    if column.categories is None:
        raise ValueError(f"counts[{spec.name!r}].categories: expected a mapping, got None")
    cat = profile.categorical[spec.name]
    return [measure.categorical_counts(spec.name, cat, column.categories, column.missing, methods)]


def _bins_of(name: str, column: ColumnCounts) -> np.ndarray:
    if column.bins is None:
        raise ValueError(f"counts[{name!r}].bins: expected bin counts, got None")
    return np.asarray(column.bins)


def _insufficient(n_rows: int) -> DriftResult:
    return DriftResult("insufficient_data", n_rows, (), 0.0, False)


def _decide(profile: ReferenceProfile, n_rows: int, measured: Sequence[Measured]) -> DriftResult:
    """Apply the thresholds of the settings' mode and aggregate to dataset drift."""
    if profile.settings.threshold_mode == "calibrated":
        # all columns at once: columns that share a null distribution share its simulation
        requests = [(m.column, [v[0] for v in m.values], m.size) for m in measured]
        calibrate.prepare(profile, requests, lambda jobs: run_all(jobs, profile.settings.workers))
    decided = [_decide_column(profile, m) for m in measured]
    if profile.settings.threshold_mode == "p-value":
        decided = _apply_correction(profile, decided)
    columns = tuple(
        ColumnDrift(
            column=m.column,
            kind=m.kind,
            results=results,
            drifted=bool(results and results[0].drifted),
            quality=m.quality,
            source=m.source,
            notes=m.notes,
        )
        for m, results in zip(measured, decided, strict=True)
    )
    share = sum(c.drifted for c in columns) / len(columns) if columns else 0.0
    return DriftResult(
        "ok", n_rows, columns, share, bool(columns) and share >= profile.settings.drift_share
    )


def _decide_column(profile: ReferenceProfile, m: Measured) -> tuple[MethodResult, ...]:
    settings = profile.settings
    methods = [method for method, _, _ in m.values]
    if settings.threshold_mode == "calibrated":
        limits = calibrate.thresholds(profile, m.column, methods, m.size) if methods else {}
        return tuple(
            MethodResult(method, stat, p, limits[method], stat > limits[method], "distance")
            for method, stat, p in m.values
        )
    out = []
    for method, stat, p in m.values:
        limit = settings.fixed_threshold(method)
        if method in TEST_METHODS and p is not None:
            threshold = settings.alpha if settings.threshold_mode == "p-value" else limit
            out.append(MethodResult(method, stat, p, threshold, p < threshold, "p_value"))
        else:
            out.append(MethodResult(method, stat, p, limit, stat >= limit, "distance"))
    return tuple(out)


def _apply_correction(
    profile: ReferenceProfile, decided: list[tuple[MethodResult, ...]]
) -> list[tuple[MethodResult, ...]]:
    """Adjust each test method's p-values across the columns that ran it."""
    alpha = profile.settings.alpha
    rows = [list(results) for results in decided]
    for method in TEST_METHODS:
        where = [
            (i, j)
            for i, results in enumerate(rows)
            for j, r in enumerate(results)
            if r.method == method and r.kind == "p_value"
        ]
        raw = [rows[i][j].p_value or 0.0 for i, j in where]
        for (i, j), adjusted in zip(where, adjust(raw, profile.settings.correction), strict=True):
            r = rows[i][j]
            rows[i][j] = MethodResult(
                r.method, r.statistic, r.p_value, alpha, adjusted < alpha, "p_value", adjusted
            )
    return [tuple(r) for r in rows]
