"""The drift engine's public names and settings validation: part of the contract with the
stream scheduler, the API and the CLI."""

from __future__ import annotations

import pytest

import monitor.drift
from monitor.drift import DriftSettings


def test_public_names_snapshot() -> None:
    assert monitor.drift.__all__ == [
        "CATEGORICAL_METHODS",
        "DESCRIPTORS",
        "EVIDENTLY_THRESHOLDS",
        "NUMERICAL_METHODS",
        "ColumnCounts",
        "ColumnDrift",
        "ColumnKind",
        "ColumnQuality",
        "ColumnSpec",
        "Correction",
        "DriftResult",
        "DriftSettings",
        "Method",
        "MethodResult",
        "ReferenceProfile",
        "ThresholdMode",
        "adjust",
        "benjamini_hochberg",
        "build_profile",
        "compare",
        "compare_counts",
        "holm",
    ]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("false_alarm_rate", 0.0, r"false_alarm_rate: expected a number in \(0, 1\), got: 0.0"),
        ("alpha", 1.5, r"alpha: expected a number in \(0, 1\), got: 1.5"),
        ("n_bins", 1, "n_bins: expected an integer >= 2, got: 1"),
        ("drift_share", 0.0, r"drift_share: expected a number in \(0, 1\], got: 0.0"),
        ("min_rows", 0, "min_rows: expected an integer >= 1, got: 0"),
        ("workers", 0, "workers: expected None or an integer >= 1, got: 0"),
    ],
    ids=["false-alarm-rate", "alpha", "n-bins", "drift-share", "min-rows", "workers"],
)
def test_bad_settings_name_the_field_value_and_expectation(
    field: str, value: float, expected: str
) -> None:
    with pytest.raises(ValueError, match=expected):
        DriftSettings(**{field: value})  # type: ignore[arg-type]
