"""Drift per segment: each segment value judged against its own reference rows, checked
against scipy on the segment's rows; bounded segments; too-small segments reported, not
judged; the segment with the largest drift share marked."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from monitor.drift import ColumnSpec, DriftSettings
from monitor.drift.segments import (
    OTHER,
    build_segment_profiles,
    compare_segments,
    kept_values,
    segment_keys,
)

SPECS = [
    ColumnSpec("x", "numerical", ("ks", "wasserstein")),
    ColumnSpec("colour", "categorical", ("chi2", "jensenshannon")),
    ColumnSpec("region", "categorical"),
]
COLOURS = np.array(["red", "green", "blue"], dtype=object)


def data(
    n: int, seed: int, *, shift: dict[str, float] | None = None, regions: list[str] | None = None
) -> dict[str, np.ndarray]:
    """Rows of regions a, b (and c); ``shift`` moves x and the colours of some regions."""
    rng = np.random.default_rng(seed)
    names = regions or ["a", "b"]
    region = rng.choice(np.array(names, dtype=object), n)
    x = rng.normal(0.0, 1.0, n)
    colour = rng.choice(COLOURS, n, p=[0.5, 0.3, 0.2])
    for name, by in (shift or {}).items():
        rows = region == name
        x[rows] += by
        colour[rows] = rng.choice(COLOURS, int(rows.sum()), p=[0.2, 0.3, 0.5])
    return {"x": x, "colour": colour, "region": region}


def test_one_segments_statistics_equal_scipy_on_its_rows() -> None:
    reference, current = data(4000, 1), data(1500, 2, shift={"a": 0.3})
    settings = DriftSettings(threshold_mode="p-value", min_rows=50)
    profiles = build_segment_profiles(reference, SPECS, settings, "region", 10)
    by_segment = {d.segment: d for d in compare_segments(profiles, current)}
    a = by_segment["a"]
    assert a.result is not None and a.status == "ok"
    ref_rows, cur_rows = reference["region"] == "a", current["region"] == "a"
    assert (a.reference_rows, a.n_rows) == (ref_rows.sum(), cur_rows.sum())
    # The segment column is constant inside a segment: left out of its comparison.
    x, colour = a.result.columns
    assert (x.column, colour.column) == ("x", "colour")

    ks, wasserstein = x.results
    expected = stats.ks_2samp(reference["x"][ref_rows], current["x"][cur_rows])
    assert ks.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert ks.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    distance = stats.wasserstein_distance(reference["x"][ref_rows], current["x"][cur_rows])
    assert wasserstein.statistic == pytest.approx(
        distance / np.std(reference["x"][ref_rows]), rel=1e-9
    )
    chi2 = colour.results[0]
    table = np.array(
        [
            [np.sum(reference["colour"][ref_rows] == c) for c in COLOURS],
            [np.sum(current["colour"][cur_rows] == c) for c in COLOURS],
        ]
    )
    expected_chi2 = stats.chi2_contingency(table, correction=False)
    assert chi2.statistic == pytest.approx(expected_chi2.statistic, rel=1e-12)
    assert chi2.p_value == pytest.approx(expected_chi2.pvalue, rel=1e-9)
    assert a.result.drift_share == 1.0 and a.largest


def test_only_the_shifted_segment_drifts_and_is_the_largest() -> None:
    reference, current = data(6000, 3), data(3000, 4, shift={"b": 0.5})
    settings = DriftSettings(min_rows=100, calibration_replicates=500)
    profiles = build_segment_profiles(reference, SPECS, settings, "region", 10)
    drifts = {d.segment: d for d in compare_segments(profiles, current)}
    assert set(drifts) == {"a", "b", OTHER}
    assert drifts["b"].result is not None and drifts["b"].result.dataset_drifted
    assert set(drifts["b"].result.drifted_columns) == {"x", "colour"}
    assert drifts["a"].result is not None and drifts["a"].result.drifted_columns == ()
    assert [d.segment for d in drifts.values() if d.largest] == ["b"]
    # No reference row is outside a and b: __other__ has nothing to be judged against.
    assert (drifts[OTHER].status, drifts[OTHER].reference_rows) == ("insufficient_reference", 0)


def test_small_segments_are_reported_not_judged() -> None:
    reference = data(3000, 5)
    reference["region"][:40] = "c"  # 40 reference rows of c: below min_rows
    current = data(2000, 6)
    current["region"][:30] = "a"
    current["region"][30:] = "b"
    current["region"][:10] = "c"
    settings = DriftSettings(min_rows=100, calibration_replicates=200)
    profiles = build_segment_profiles(reference, SPECS, settings, "region", 10)
    drifts = {d.segment: d for d in compare_segments(profiles, current)}
    assert (drifts["c"].status, drifts["c"].reference_rows, drifts["c"].n_rows) == (
        "insufficient_reference",
        40,
        10,
    )
    assert (drifts["a"].status, drifts["a"].n_rows) == ("insufficient_data", 20)
    assert drifts["a"].drift_share is None and not drifts["a"].largest
    assert drifts["b"].status == "ok" and drifts["b"].largest


def test_segments_are_bounded_by_the_reference_the_rest_other() -> None:
    values = ["b", "a", "c", "a", "b", "d", None, "", float("nan"), "c"]
    assert kept_values(values, 2) == ("a", "b")  # a, b, c tie at 2: by the value
    keys = segment_keys(["a", "c", "new", None, "b", float("nan")], ("a", "b"))
    assert keys.tolist() == ["a", OTHER, OTHER, OTHER, "b", OTHER]


def test_other_is_judged_against_the_references_remaining_rows() -> None:
    names = ["a", "b", "c"]
    reference = data(6000, 7, regions=names)
    current = data(3000, 8, regions=names, shift={"c": 0.6})
    settings = DriftSettings(min_rows=100, calibration_replicates=300)
    profiles = build_segment_profiles(reference, SPECS, settings, "region", 2)
    kept = {p.segment for p in profiles} - {OTHER}
    assert len(kept) == 2
    (other,) = [p for p in profiles if p.segment == OTHER]
    assert other.reference_rows == sum(1 for v in reference["region"] if v not in kept)
    drifts = {d.segment: d for d in compare_segments(profiles, current)}
    shifted = OTHER if "c" not in kept else "c"
    assert drifts[shifted].largest and drifts[shifted].drift_share == 1.0
    # The segment column is left out of __other__ too: its mix of the remaining values
    # is what the whole window's report already judges.
    assert other.profile is not None
    assert [c.name for c in other.profile.columns] == ["x", "colour"]


def test_a_missing_segment_column_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="segment column 'device'"):
        build_segment_profiles(data(200, 9), SPECS, DriftSettings(), "device", 10)
