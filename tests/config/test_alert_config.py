"""``[alerts]`` through the config loader: key paths in messages, secrets never shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from monitor.config import parse_config
from monitor.errors import ConfigError


def problems(alerts: dict[str, Any], environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config({"alerts": alerts}, base_dir=Path("."), environ=environ or {})
    return caught.value.problems


def test_rule_problems_name_the_key_path() -> None:
    found = problems(
        {
            "rules": [
                {"name": "a", "kind": "threshold", "metric": "f1"},
                {"name": "b", "kind": "run_failed", "for": "soon"},
                {"name": "c", "kind": "stale"},
            ]
        }
    )
    assert found == [
        "alerts.rules[0]: kind 'threshold' needs 'op', 'value'",
        "alerts.rules[1].for: expected a duration like '30s', '5m' or '1h', got 'soon'",
        "alerts.rules[2]: kind 'stale' needs 'after'",
    ]


def test_secrets_are_never_echoed() -> None:
    literal = problems(
        {"sinks": [{"name": "w", "kind": "webhook", "url": "http://h", "secret": "hunter2"}]}
    )
    from_env = problems(
        {"sinks": [{"name": "w", "kind": "webhook", "url": "http://h", "secret": "${S}"}]},
        {"S": "hunter2"},
    )
    for found in (literal, from_env):
        assert len(found) == 1 and "hunter2" not in found[0]
        assert found[0].startswith("alerts.sinks[0].secret: expected a secret of the form 'whsec_")


def test_duplicate_names_and_unknown_keys() -> None:
    found = problems(
        {
            "rules": [{"name": "a", "kind": "run_failed"}, {"name": "a", "kind": "run_failed"}],
            "sinks": [{"name": "s", "kind": "slack", "url": "http://h", "sevrity": ["info"]}],
        }
    )
    assert "alerts.sinks[0].sevrity: unknown key; did you mean 'severities'?" in found
    assert "alerts.rules[1].name: duplicate name 'a' (first used by alerts.rules[0])" in found


def test_a_valid_section_normalises_for() -> None:
    config = parse_config(
        {"alerts": {"rules": [{"name": "a", "kind": "run_failed", "for": "10m"}]}},
        base_dir=Path("."),
        environ={},
    )
    (rule,) = config.alerts.rules
    assert rule.for_count == 1 and rule.for_duration.total_seconds() == 600
