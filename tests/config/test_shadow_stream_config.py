"""A stream naming another stream as its shadow (``shadow.stream``): the join's settings,
and every way the two streams can fail to fit, refused with its key path."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.config import Config, parse_config
from monitor.errors import ConfigError


def streams(tmp_path: Path, production: dict[str, Any], shadow: dict[str, Any]) -> Config:
    """Two streams, ``churn`` and ``churn-shadow``; keywords replace keys (``None``
    drops one)."""
    (tmp_path / "reference.csv").write_text("ts,x,pred\n")
    base = {
        "timestamp": "ts",
        "record_id": "id",
        "numerical": ["x"],
        "prediction": "pred",
        "prediction_kind": "categorical",
        "reference": {"file": "reference.csv"},
        "window": {"every": "1h"},
    }

    def table(name: str, changes: dict[str, Any]) -> dict[str, Any]:
        merged = {**base, "name": name, **changes}
        return {k: v for k, v in merged.items() if v is not None}

    raw = {
        "store": {"data_dir": str(tmp_path / "data")},
        "streams": [table("churn", production), table("churn-shadow", shadow)],
    }
    return parse_config(raw, base_dir=tmp_path)


def problems(tmp_path: Path, production: dict[str, Any], shadow: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        streams(tmp_path, production, shadow)
    return info.value.problems


def test_a_stream_names_its_shadow_stream_and_the_lag_its_windows_wait(tmp_path: Path) -> None:
    config = streams(tmp_path, {"shadow": {"stream": "churn-shadow", "max_lag": "5m"}}, {})
    production = config.streams[0]
    assert production.shadow.stream == "churn-shadow"
    assert production.shadow.max_lag == timedelta(minutes=5)
    assert production.compares_shadow and production.shadow_prediction is None
    # The shadow stream is a stream of its own: judged for drift like any other.
    assert config.streams[1].shadow.stream is None and not config.streams[1].compares_shadow


@pytest.mark.parametrize(
    ("production", "shadow", "expected"),
    [
        (
            {"shadow": {"stream": "churn-shadw"}},
            {},
            "streams[0].shadow.stream: unknown stream 'churn-shadw'; did you mean 'churn-shadow'?",
        ),
        (
            {"shadow": {"stream": "churn-shadow"}},
            {"prediction": None},
            "streams[0].shadow.stream: stream 'churn-shadow' has no 'prediction'",
        ),
        (
            {"shadow": {"stream": "churn-shadow"}},
            {"prediction_kind": "numerical"},
            "streams[0].shadow.stream: stream 'churn-shadow' has prediction_kind 'numerical';"
            " expected 'categorical'",
        ),
        (
            {"shadow": {"stream": "churn-shadow"}},
            {"record_id": None},
            "streams[0].shadow.stream: stream 'churn-shadow' has no 'record_id'",
        ),
        (
            {"shadow": {"stream": "churn-shadow"}},
            {"source": {"kind": "files", "glob": "*.csv"}},
            "streams[0].shadow.stream: stream 'churn-shadow' reads files",
        ),
        (
            {"shadow": {"stream": "churn-shadow"}, "shadow_prediction": "shadow_pred"},
            {},
            "streams[0]: shadow.stream: the shadow model's predictions come either on this"
            " stream's records ('shadow_prediction') or from another stream, not both",
        ),
        (
            {"shadow": {"stream": "churn"}},
            {},
            "streams[0]: shadow.stream: a stream cannot be its own shadow",
        ),
        (
            {"shadow": {"stream": "churn-shadow"}, "record_id": None},
            {},
            "streams[0]: shadow.stream: the shadow stream is joined by record id",
        ),
        (
            {"shadow": {"stream": "churn-shadow"}, "source": {"kind": "files", "glob": "*.csv"}},
            {},
            "streams[0]: shadow.stream: a stream joined to a shadow stream needs the ingest",
        ),
        (
            {"shadow": {"max_lag": "5m"}, "shadow_prediction": "shadow_pred"},
            {},
            "streams[0]: shadow.max_lag: applies to a shadow stream; set 'shadow.stream'",
        ),
        (
            {"shadow": {"stream": "churn-shadow", "max_lag": "-5m"}},
            {},
            "streams[0].shadow.max_lag",
        ),
    ],
    ids=[
        "unknown-stream",
        "shadow-without-prediction",
        "other-kind",
        "shadow-without-record-id",
        "shadow-not-ingested",
        "column-and-stream",
        "itself",
        "without-record-id",
        "production-not-ingested",
        "lag-without-stream",
        "negative-lag",
    ],
)
def test_a_shadow_stream_that_cannot_be_joined_is_refused(
    tmp_path: Path, production: dict[str, Any], shadow: dict[str, Any], expected: str
) -> None:
    found = problems(tmp_path, production, shadow)
    assert any(expected in p for p in found), found
