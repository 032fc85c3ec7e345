"""Fixtures for stream tests: a stream config with a reference file, and a store.

``make_stream_config`` is also used by the stream API tests (``tests/api``) and the daemon's
drift test (``tests/daemon``), whose conftests re-export it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from monitor.config import Config, StreamConfig, parse_config

WRITE_TOKEN = "write-token-0123456789abcdef"
READ_TOKEN = "read-token-0123456789abcdef"

MakeConfig = Callable[..., Config]


def stream_table(**changes: Any) -> dict[str, Any]:
    """A ``[[streams]]`` table as parsed TOML; keywords replace keys."""
    table: dict[str, Any] = {
        "name": "wine",
        "timestamp": "ts",
        "record_id": "id",
        "numerical": ["alcohol", "acidity"],
        "categorical": ["region"],
        "reference": {"file": "reference.csv"},
        "window": {"every": "1h", "min_rows": 50},
    }
    table.update(changes)
    return table


@pytest.fixture
def make_stream_config(tmp_path: Path) -> MakeConfig:
    """``make_stream_config(**stream_changes)``: a config with one stream and two tokens."""
    (tmp_path / "reference.csv").write_text("ts,alcohol,acidity,region\n")

    def make(*streams: dict[str, Any], **changes: Any) -> Config:
        raw = {
            "server": {
                "tokens": [
                    {"name": "ci", "token": WRITE_TOKEN, "scopes": ["read", "write"]},
                    {"name": "viewer", "token": READ_TOKEN, "scopes": ["read"]},
                ]
            },
            "store": {"data_dir": str(tmp_path / "data")},
            "streams": list(streams) or [stream_table(**changes)],
        }
        return parse_config(raw, base_dir=tmp_path)

    return make


@pytest.fixture
def stream(make_stream_config: MakeConfig) -> StreamConfig:
    return make_stream_config().streams[0]
