"""Static checks of the Grafana dashboards and provisioning files."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.metrics.test_metrics_contract import documented
from tests.servers import ROOT

DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
METRIC = re.compile(r"\bmonitor_[a-z_]+")


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "grafana_generate", ROOT / "grafana" / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def panels() -> list[tuple[str, dict[str, Any]]]:
    return [(path.name, panel) for path in DASHBOARDS for panel in load(path)["panels"]]


def test_committed_dashboards_are_what_the_generator_writes() -> None:
    rendered = generator().render()
    assert sorted(rendered) == [p.name for p in DASHBOARDS]
    for path in DASHBOARDS:
        assert path.read_text() == rendered[path.name], (
            f"run python grafana/generate.py ({path.name})"
        )


def test_dashboards_have_unique_uids_titles_and_the_datasource_variable() -> None:
    uids = [load(p)["uid"] for p in DASHBOARDS]
    assert len(DASHBOARDS) >= 3 and len(set(uids)) == len(uids)
    for path in DASHBOARDS:
        board = load(path)
        assert board["title"] and board["description"]
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        assert "DS_PROMETHEUS" not in path.read_text()
        for name, var in variables.items():
            if var["type"] == "query":
                assert var["query"]["query"].startswith("label_values("), name


@pytest.mark.parametrize(
    ("board", "panel"), panels(), ids=lambda p: p if isinstance(p, str) else p["title"]
)
def test_every_panel_is_described_and_uses_the_contract(board: str, panel: dict[str, Any]) -> None:
    assert panel["title"] and panel["description"]
    assert panel["fieldConfig"]["defaults"]["unit"]
    assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    contract = documented()
    for target in panel["targets"]:
        assert target["datasource"]["uid"] == "${datasource}"
        expr = target["expr"]
        for name in METRIC.findall(expr):
            histogram = re.sub(r"_(bucket|sum|count)$", "", name)
            assert name in contract or contract.get(histogram, ("",))[0] == "histogram", (
                f"{board} / {panel['title']}: {name} is not in docs/metrics.md"
            )
        for window in re.findall(r"(?:rate|increase|irate)\([^\[]*\[([^\]]+)\]", expr):
            assert window in ("$__rate_interval", "24h", "1h"), (
                f"{panel['title']}: rate over {window}"
            )


def test_panels_do_not_overlap() -> None:
    for path in DASHBOARDS:
        cells: set[tuple[int, int]] = set()
        for panel in load(path)["panels"]:
            g = panel["gridPos"]
            assert g["x"] + g["w"] <= 24
            area = {
                (x, y)
                for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])
            }
            assert not area & cells, f"{path.name}: {panel['title']} overlaps another panel"
            cells |= area
