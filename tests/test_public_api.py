"""The public contract, snapshot-tested: ``monitor.__all__``, the CLI's commands and flags,
the configuration's JSON schema and the HTTP routes. (The metric names are pinned against
docs/metrics.md by tests/metrics; the webhook payload by tests/sinks.)

A change to any of these is a change users see: when it is meant, regenerate the
snapshots with ``MONITOR_UPDATE_SNAPSHOTS=1 python -m pytest tests/test_public_api.py``,
review the diff, and say in CHANGELOG.md what changed (BREAKING for a removed or renamed
config key, route or flag).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
from prometheus_client import CollectorRegistry

import monitor
from monitor.api import create_app
from monitor.cli import cli
from monitor.config import Config
from monitor.store import Store

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("MONITOR_UPDATE_SNAPSHOTS") == "1"


def matches_snapshot(name: str, value: Any) -> None:
    path = SNAPSHOTS / f"{name}.json"
    text = json.dumps(value, indent=2, sort_keys=True) + "\n"
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no snapshot {path.name}; set MONITOR_UPDATE_SNAPSHOTS=1 to write it"
    assert json.loads(text) == json.loads(path.read_text(encoding="utf-8"))


def test_all_is_sorted_resolves_and_matches_the_snapshot() -> None:
    names = list(monitor.__all__)
    assert names == sorted(names)
    for name in names:
        assert getattr(monitor, name) is not None
    matches_snapshot("all", names)


def test_every_error_class_is_exported() -> None:
    from monitor import errors

    classes = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.MonitorError)
    }
    assert classes <= set(monitor.__all__)


def commands(group: click.Group, prefix: str = "monitor") -> dict[str, Any]:
    """Every command path with its arguments and options (names, flags, required)."""
    found: dict[str, Any] = {}
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            found.update(commands(command, path))
            continue
        params = [
            {
                "name": param.name,
                "kind": "option" if isinstance(param, click.Option) else "argument",
                "flags": sorted(param.opts + param.secondary_opts),
                "required": param.required,
                "multiple": bool(getattr(param, "multiple", False)),
            }
            for param in command.params
        ]
        found[path] = sorted(params, key=lambda param: str(param["name"]))
    return found


def test_cli_commands_and_flags_match_the_snapshot() -> None:
    matches_snapshot("cli", commands(cli))


def test_config_schema_matches_the_snapshot() -> None:
    matches_snapshot("config-schema", Config.model_json_schema())


def test_http_routes_match_the_snapshot(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'monitor.db'}")
    try:
        app = create_app(store, CollectorRegistry(), version=monitor.__version__)
        documented = {
            f"{method.upper()} {path}"
            for path, operations in app.openapi()["paths"].items()
            for method in operations
        }
        # Routes outside the OpenAPI document (/metrics, /docs) as the router lists them.
        served = {
            f"{method} {path}"
            for route in app.routes
            if (path := getattr(route, "path", None)) is not None
            for method in sorted(getattr(route, "methods", None) or {"ANY"})
            if method != "HEAD"
        }
        routes = sorted(documented | served)
    finally:
        store.close()
    matches_snapshot("http-routes", routes)
