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


# What each metric scale must read as, independently of the generator's own table.
SCALE_UNIT = {"ratio": "percentunit", "points": "none", "value": "none"}
SCALE_ROW = re.compile(r"^\| `(\w+)`: [^|]*\| ([^|]*)\|")


def documented_scales() -> dict[str, str]:
    """metric name -> scale, from the Scales table in docs/metrics.md."""
    scales = {}
    for line in (ROOT / "docs" / "metrics.md").read_text().splitlines():
        if match := SCALE_ROW.match(line):
            for name in re.findall(r"`([^`]+)`", match.group(2)):
                scales[name] = match.group(1)
    return scales


def unit_of(panel: dict[str, Any], series: str) -> str:
    """The unit Grafana shows ``series`` in: the last matching override's, else the
    panel's (Grafana anchors a byRegexp pattern that is not written /like this/)."""
    unit = panel["fieldConfig"]["defaults"]["unit"]
    for override in panel["fieldConfig"]["overrides"]:
        matcher = override["matcher"]
        if matcher["id"] == "byRegexp" and re.fullmatch(matcher["options"], series):
            for prop in override["properties"]:
                if prop["id"] == "unit":
                    unit = prop["value"]
    return str(unit)


def by_title(board: str, title: str) -> dict[str, Any]:
    (panel,) = [
        p for p in load(ROOT / "grafana" / "dashboards" / board)["panels"] if p["title"] == title
    ]
    return panel


def test_the_documented_scales_are_the_registry() -> None:
    from monitor.scoring import metric_class, metric_names

    assert documented_scales() == {name: metric_class(name).scale for name in metric_names()}


SCORE_PANELS = [
    ("model-quality.json", "Score with 95% interval"),
    ("model-quality.json", "Interval width"),
    ("model-quality.json", "Change against the baseline"),
    ("production-performance.json", "Performance per segment"),
    ("production-performance.json", "Largest gap between segments"),
]


@pytest.mark.parametrize(("board", "title"), SCORE_PANELS, ids=[t for _, t in SCORE_PANELS])
def test_score_series_read_in_their_metrics_scale(board: str, title: str) -> None:
    from monitor.scoring import metric_names

    panel = by_title(board, title)
    assert all(
        t["legendFormat"].endswith(("{{metric}}", " lower", " upper")) for t in panel["targets"]
    )
    for name, scale in documented_scales().items():
        assert name in metric_names()
        stored = name.replace("@k", "@10")
        for label in (stored, f"{stored}[average=macro]"):
            series = f"qa / prod / {label}"
            for shown in (series, f"{series} lower", f"{series} upper", f"baseline {series}"):
                assert unit_of(panel, shown) == SCALE_UNIT[scale], (title, shown)


def test_bleu_reads_as_points_and_accuracy_as_percent() -> None:
    panel = by_title("model-quality.json", "Score with 95% interval")
    assert unit_of(panel, "mt / llm / bleu") == "none"
    assert unit_of(panel, "mt / llm / chrf upper") == "none"
    assert unit_of(panel, "wine / clf / accuracy") == "percentunit"
    assert unit_of(panel, "wine / clf / rouge-l[stemming=true] lower") == "percentunit"
    # a name that merely starts like a metric is not taken for it
    assert unit_of(panel, "wine / clf / accuracy-ish") == "none"


def test_interval_bounds_and_baselines_are_named_after_their_series() -> None:
    panel = by_title("model-quality.json", "Score with 95% interval")
    legends = [t["legendFormat"] for t in panel["targets"]]
    assert len(set(legends)) == len(legends)
    assert all("{{suite}}" in legend and "{{model}}" in legend for legend in legends)
    for board, panel in panels():
        for target in panel["targets"]:
            assert target["legendFormat"] not in ("lower", "upper"), (board, panel["title"])


@pytest.mark.parametrize("title", ["Cost per day", "Cost of the latest run"])
def test_cost_is_shown_in_the_currency_of_its_label(title: str) -> None:
    panel = by_title("operations.json", title)
    assert all(t["legendFormat"].endswith("({{currency}})") for t in panel["targets"])
    assert unit_of(panel, "wine / clf (USD)") == "currencyUSD"
    assert unit_of(panel, "wine / clf (EUR)") == "currencyEUR"
    assert unit_of(panel, "wine / clf (XYZ)") == "none"  # the code stays in the legend


STATS = [
    ("overview.json", "Models regressed", 1, "red", "green"),
    ("overview.json", "Firing alerts", 1, "red", "green"),
    ("overview.json", "Undeliverable notifications", 1, "red", "green"),
    ("overview.json", "Runs failed or interrupted (24h)", 1, "orange", "green"),
    ("overview.json", "Store up", 0, "red", "green"),
    ("drift.json", "Streams drifted", 1, "red", "green"),
]


def colour_at(panel: dict[str, Any], value: float) -> str:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    colour = steps[0]["color"]
    for step in steps[1:]:
        if value >= step["value"]:
            colour = step["color"]
    return str(colour)


@pytest.mark.parametrize(
    ("board", "title", "bad", "bad_colour", "good_colour"), STATS, ids=[s[1] for s in STATS]
)
def test_verdict_and_alert_stats_turn_colour(
    board: str, title: str, bad: float, bad_colour: str, good_colour: str
) -> None:
    panel = by_title(board, title)
    assert panel["type"] == "stat" and panel["options"]["colorMode"] == "background"
    assert panel["fieldConfig"]["defaults"]["color"] == {"mode": "thresholds"}
    assert colour_at(panel, bad) == bad_colour
    assert colour_at(panel, 1 - bad) == good_colour


def test_latest_verdicts_colour_each_outcome() -> None:
    panel = by_title("overview.json", "Latest verdicts")
    (column,) = [
        o for o in panel["fieldConfig"]["overrides"] if o["matcher"]["options"] == "outcome"
    ]
    props = {p["id"]: p["value"] for p in column["properties"]}
    (mapping,) = props["mappings"]
    colours = {outcome: m["color"] for outcome, m in mapping["options"].items()}
    assert colours == {
        "regressed": "red",
        "inconclusive": "orange",
        "improved": "blue",
        "pass": "green",
    }
    assert props["custom.cellOptions"] == {"type": "color-background"}
