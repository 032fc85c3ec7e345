"""The reference profile: round trip, bins for push-down, quality signals, text, edge cases."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pytest

from monitor.drift import (
    ColumnCounts,
    ColumnSpec,
    DriftResult,
    DriftSettings,
    ReferenceProfile,
    build_profile,
    compare,
    compare_counts,
)
from monitor.drift.profile import category_counts, encode_header, npz_bytes

COLUMNS = [
    ColumnSpec("x", "numerical"),
    ColumnSpec("y", "numerical", ("psi", "ks")),
    ColumnSpec("c", "categorical"),
]


def _data(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    x = rng.normal(shift, 1.0, n)
    x[:5] = np.nan
    levels = np.array(["red", "green", "blue", "new"] if shift else ["red", "green", "blue"])
    return {
        "x": x,
        "y": rng.exponential(1.0 + shift, n),
        "c": rng.choice(levels, n).astype(object),
    }


def _flat(result: DriftResult) -> list[tuple[str, str, float, float, bool]]:
    return [
        (c.column, r.method, r.statistic, r.threshold, r.drifted)
        for c in result.columns
        for r in c.results
    ]


def test_profile_round_trip_gives_identical_results() -> None:
    rng = np.random.default_rng(1)
    profile = build_profile(_data(rng, 5_000), COLUMNS, DriftSettings(seed=3))
    window = _data(rng, 1_000, shift=0.2)
    first = compare(profile, window)
    restored = ReferenceProfile.from_bytes(profile.to_bytes())
    assert restored.thresholds == profile.thresholds  # calibrated thresholds travel along
    assert restored.settings == profile.settings
    assert _flat(compare(restored, window)) == _flat(first)
    fresh = ReferenceProfile.from_bytes(
        build_profile(
            _data(np.random.default_rng(1), 5_000), COLUMNS, DriftSettings(seed=3)
        ).to_bytes()
    )
    assert _flat(compare(fresh, window)) == _flat(first)  # recalibrating reproduces the cache


def test_from_bytes_refuses_garbage_and_unknown_versions() -> None:
    profile = build_profile(_data(np.random.default_rng(2), 500), COLUMNS[:1])
    with pytest.raises(ValueError, match="expected a reference profile archive"):
        ReferenceProfile.from_bytes(profile.to_bytes()[:100])
    future = npz_bytes({"header": encode_header({"version": 99})})
    with pytest.raises(ValueError, match="expected 1, got: 99"):
        ReferenceProfile.from_bytes(future)


@pytest.mark.parametrize("mode", ["calibrated", "fixed", "p-value"], ids=lambda m: m)
def test_compare_counts_equals_compare_for_binned_methods(mode: str) -> None:
    rng = np.random.default_rng(5)
    settings = DriftSettings(threshold_mode=mode)  # type: ignore[arg-type]
    profile = build_profile(_data(rng, 8_000), COLUMNS, settings)
    window = _data(rng, 2_000, shift=0.1)
    in_memory = compare(profile, window)
    counts = {
        "x": _numeric_counts(profile, "x", window["x"]),
        "y": _numeric_counts(profile, "y", window["y"]),
        "c": ColumnCounts(categories=_category_counts(window["c"])),
    }
    pushed = compare_counts(profile, counts, n_rows=2_000)
    binned = {"psi", "jensenshannon", "hellinger", "chi2", "linf"}
    expected = [row for row in _flat(in_memory) if row[1] in binned]
    got = _flat(pushed)
    assert [row[:2] for row in got] == [row[:2] for row in expected]
    assert [row[4] for row in got] == [row[4] for row in expected]
    # pytest.approx compares flat sequences only (pytest >= 9.1 refuses nested ones)
    assert [v for row in got for v in row[2:4]] == pytest.approx(
        [v for row in expected for v in row[2:4]]
    )
    x_notes = pushed.columns[0].notes
    assert any(n.startswith("ks:") for n in x_notes)
    assert any(n.startswith("wasserstein:") for n in x_notes)
    assert pushed.columns[0].quality.missing_share == in_memory.columns[0].quality.missing_share
    assert pushed.columns[2].quality == in_memory.columns[2].quality


def _numeric_counts(profile: ReferenceProfile, column: str, values: np.ndarray) -> ColumnCounts:
    """Counts as SQL would give them: bin = number of inner edges <= value."""
    present = values[~np.isnan(values)]
    edges = profile.bin_edges(column)
    index = np.searchsorted(edges, present, side="right")
    bins = np.bincount(index, minlength=edges.size + 1)
    return ColumnCounts(bins=bins, missing=int(np.isnan(values).sum()))


def _category_counts(values: np.ndarray) -> dict[str, int]:
    keys, counts = np.unique(values.astype(str), return_counts=True)
    return {str(k): int(v) for k, v in zip(keys, counts, strict=True)}


def test_quality_signals() -> None:
    rng = np.random.default_rng(9)
    reference = {"x": rng.uniform(0, 1, 1_000), "c": np.array(["a", "b"] * 500, dtype=object)}
    current = {
        "x": np.concatenate([rng.uniform(0, 1, 160), [2.0, -1.0, 5.0, 7.0], [np.nan] * 36]),
        "c": np.array(
            ["a"] * 100 + [None] * 20 + [""] * 10 + ["z"] * 60 + ["y"] * 10, dtype=object
        ),
    }
    columns = [ColumnSpec("x", "numerical"), ColumnSpec("c", "categorical")]
    profile = build_profile(reference, columns)
    result = compare(profile, current)
    x, c = result.columns
    assert x.quality.missing_share == pytest.approx(36 / 200)
    assert x.quality.out_of_range_share == pytest.approx(4 / 164)
    assert c.quality.missing_share == pytest.approx(30 / 200)
    assert c.quality.new_categories == ("y", "z")
    assert c.quality.new_category_share == pytest.approx(70 / 170)
    assert c.drifted


def test_bin_edges_are_reference_quantiles_with_open_outer_bins() -> None:
    values = np.arange(1000, dtype=float)
    profile = build_profile({"x": values}, [ColumnSpec("x", "numerical")], DriftSettings(n_bins=10))
    edges = profile.bin_edges("x")
    np.testing.assert_allclose(edges, np.quantile(values, np.arange(1, 10) / 10))
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=10)
    assert counts.tolist() == [100] * 10


def test_text_columns_become_descriptor_columns() -> None:
    rng = np.random.default_rng(4)
    words = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta"])
    reference = np.array(
        [" ".join(rng.choice(words, rng.integers(3, 9))) for _ in range(2_000)], dtype=object
    )
    longer = np.array(
        [" ".join(rng.choice(words, rng.integers(10, 20))) + " omega!" for _ in range(500)],
        dtype=object,
    )
    spec = [ColumnSpec("answer", "text")]
    profile = build_profile({"answer": reference}, spec)
    result = compare(profile, {"answer": longer})
    names = [c.column for c in result.columns]
    assert names == [
        "answer:length",
        "answer:word_count",
        "answer:non_letter_share",
        "answer:oov_share",
    ]
    assert all(c.source == "answer" and c.kind == "numerical" for c in result.columns)
    assert all(c.drifted for c in result.columns)
    same = compare(profile, {"answer": reference[:500]})
    assert not any(c.drifted for c in same.columns)


def test_small_window_is_insufficient_data() -> None:
    rng = np.random.default_rng(0)
    profile = build_profile(_data(rng, 1_000), COLUMNS, DriftSettings(min_rows=200))
    result = compare(profile, _data(rng, 199))
    assert result.status == "insufficient_data"
    assert result.columns == ()
    assert not result.dataset_drifted


def test_ks_on_categorical_is_refused_with_the_column_named() -> None:
    with pytest.raises(ValueError, match=r"columns\['c'\]\.methods"):
        build_profile(
            {"c": np.array(["a"], dtype=object)}, [ColumnSpec("c", "categorical", ("ks",))]
        )


def test_a_column_with_no_present_values_is_reported_not_guessed() -> None:
    rng = np.random.default_rng(12)
    profile = build_profile(_data(rng, 1_000), COLUMNS)
    window = _data(rng, 300)
    window["x"] = np.full(300, np.nan)
    window["c"] = np.array([None] * 300, dtype=object)
    result = compare(profile, window)
    x, _, c = result.columns
    assert x.results == () and not x.drifted and x.notes == ("no present values",)
    assert x.quality.missing_share == 1.0
    assert c.results == () and c.quality.missing_share == 1.0


@pytest.mark.parametrize(
    ("kind", "values", "match"),
    [
        ("numerical", np.full(50, np.nan), "expected some finite values, got none"),
        (
            "categorical",
            np.array([None, "", np.nan] * 20, dtype=object),
            r"expected some present categories, got none \(60 missing\)",
        ),
    ],
    ids=["numerical", "categorical"],
)
def test_an_all_missing_reference_column_is_refused_by_name(
    kind: str, values: np.ndarray, match: str
) -> None:
    spec = ColumnSpec("z", kind)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=rf"reference column 'z': {match}"):
        build_profile({"z": values}, [spec], DriftSettings(min_rows=10))


def test_a_reference_smaller_than_a_window_warns(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(14)
    with caplog.at_level(logging.WARNING, logger="monitor.drift.profile"):
        build_profile(_data(rng, 100), COLUMNS, DriftSettings(min_rows=100))
    assert not caplog.records
    with caplog.at_level(logging.WARNING, logger="monitor.drift.profile"):
        build_profile({"x": rng.normal(size=5)}, COLUMNS[:1], DriftSettings(min_rows=100))
    (record,) = caplog.records
    assert "the reference has 5 rows, fewer than min_rows (100)" in record.getMessage()
    assert "unreliable" in record.getMessage()


def test_a_missing_column_is_named() -> None:
    rng = np.random.default_rng(13)
    profile = build_profile(_data(rng, 1_000), COLUMNS)
    window = _data(rng, 300)
    del window["y"]
    with pytest.raises(ValueError, match="data lacks column 'y'"):
        compare(profile, window)


@pytest.mark.parametrize(
    "as_array",
    [
        lambda v: np.array(v, dtype=object),
        lambda v: np.array([np.nan if x is None else x for x in v], dtype=float),
        lambda v: list(v),
    ],
    ids=["objects", "floats-counted-by-numpy", "list"],
)
def test_categories_count_the_same_whatever_the_container(
    as_array: Callable[[list[float | None]], np.ndarray | list[float | None]],
) -> None:
    values: list[float | None] = [1.0, 2.0, 2.0, None, 3.0, 1.0, 1.0, None]
    counts, missing = category_counts(as_array(values))
    assert counts == {"1.0": 3, "2.0": 2, "3.0": 1}
    assert missing == 2


def test_a_profile_built_on_threads_equals_one_built_inline() -> None:
    rng = np.random.default_rng(14)
    data = _data(rng, 20_000)
    data["t"] = np.array([" ".join(["word"] * int(k)) for k in rng.integers(1, 9, 20_000)])
    columns = [*COLUMNS, ColumnSpec("t", "text")]
    inline = build_profile(data, columns, DriftSettings(workers=1))
    threaded = build_profile(data, columns, DriftSettings(workers=4))
    assert list(threaded.numerical) == list(inline.numerical)
    for name, num in inline.numerical.items():
        np.testing.assert_array_equal(threaded.numerical[name].sorted_values, num.sorted_values)
        np.testing.assert_array_equal(threaded.numerical[name].fine_edges, num.fine_edges)
    assert threaded.categorical["c"].categories == inline.categorical["c"].categories
    np.testing.assert_array_equal(threaded.categorical["c"].counts, inline.categorical["c"].counts)
    assert threaded.vocabularies == inline.vocabularies
