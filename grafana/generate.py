"""Generate the Grafana dashboards in ``grafana/dashboards/`` from compact definitions.

Run ``python grafana/generate.py`` after editing; a test fails when the committed JSON
differs from what this script writes, so the two never drift apart. Every panel gets a
description and a unit, queries the ``$datasource`` variable (never ``${DS_PROMETHEUS}``,
which breaks provisioning), and uses ``$__rate_interval`` in rates.

Units follow the metric contract: a score panel shows each series in its metric's scale,
read from the metric registry (``Metric.scale``: ratio metrics as percent, BLEU and chrF
on 0-100, error metrics as plain numbers), through overrides on the series name; a cost
series gets the currency named in its legend. Legends always name the series.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.scoring import SCALES, metric_class, metric_names

HERE = Path(__file__).resolve().parent
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PAIR = 'suite=~"$suite", model=~"$model"'
SERIES = "{{suite}} / {{model}} / {{metric}}"
"""The legend of every per-metric series: the metric comes last, where the unit
overrides (``scale_overrides``) find it."""
FAIR_SERIES = "{{suite}} / {{model}} / {{measure}}"

# Grafana unit of each metric scale, with the axis range where the scale has one.
SCALE_UNITS: dict[str, tuple[str, dict[str, float]]] = {
    "ratio": ("percentunit", {}),
    "points": ("none", {"decimals": 1}),
    "value": ("none", {}),
}
# Currencies Grafana has a unit for; a cost in any other keeps its code in the legend.
CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CHF", "INR", "BRL", "SEK", "NOK", "DKK", "PLN")
CURRENCIES += ("CZK", "ZAR", "KRW")


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    unit: str
    exprs: tuple[tuple[str, str], ...]  # (PromQL, legend)
    kind: str = "timeseries"  # timeseries, stat, table, heatmap
    width: int = 12
    height: int = 8
    overrides: tuple[dict[str, Any], ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    """Field defaults beyond the unit: thresholds, colour mode, decimals."""


def metrics_of_scale(scale: str) -> list[str]:
    """Registered metric names of ``scale``; ``@k`` metrics as their stored prefix."""
    return sorted(
        {name.removesuffix("@k") for name in metric_names() if metric_class(name).scale == scale}
    )


def scale_pattern(scale: str) -> str:
    """A Grafana series-name pattern (anchored at both ends) for every series whose
    metric has ``scale``: ``ndcg@10``, ``f1[average=micro]`` and the interval bounds'
    `` lower``/`` upper`` included."""
    names = metrics_of_scale(scale)
    assert all(re.fullmatch(r"[a-z0-9-]+", name) for name in names), names  # no escaping
    names = "|".join(names)
    return rf".* / ({names})(@[0-9]+)?(\[[^\]]*\])?( lower| upper)?"


def scale_overrides() -> tuple[dict[str, Any], ...]:
    """One override per metric scale: its unit (and decimals) for the matching series."""
    overrides = []
    for scale in SCALES:
        unit, extra = SCALE_UNITS[scale]
        properties = [{"id": "unit", "value": unit}]
        properties += [{"id": key, "value": value} for key, value in extra.items()]
        matcher = {"id": "byRegexp", "options": scale_pattern(scale)}
        overrides.append({"matcher": matcher, "properties": properties})
    return tuple(overrides)


def currency_overrides() -> tuple[dict[str, Any], ...]:
    """A cost series whose legend ends in ``(USD)`` is shown in dollars, and so on."""
    return tuple(
        {
            "matcher": {"id": "byRegexp", "options": rf".* \({code}\)"},
            "properties": [{"id": "unit", "value": f"currency{code}"}],
        }
        for code in CURRENCIES
    )


def thresholds(*steps: tuple[float | None, str]) -> dict[str, Any]:
    """Absolute thresholds: ``(None, base colour), (value, colour from there up), ...``."""
    return {
        "mode": "absolute",
        "steps": [{"value": value, "color": color} for value, color in steps],
    }


# A count that should be zero: green at 0, ``color`` from 1 up, on a coloured background.
def bad_from_one(color: str = "red") -> dict[str, Any]:
    return {"thresholds": thresholds((None, "green"), (1, color)), "color": {"mode": "thresholds"}}


OK_WHEN_ONE = {
    "thresholds": thresholds((None, "red"), (1, "green")),
    "color": {"mode": "thresholds"},
}
STAT_OPTIONS = {
    "colorMode": "background",
    "graphMode": "none",
    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
}
OUTCOME_COLOURS = {
    "regressed": ("red", 0),
    "inconclusive": ("orange", 1),
    "improved": ("blue", 2),
    "pass": ("green", 3),
}
VERDICT_OUTCOME_COLUMN = {
    # The table's "outcome" column, coloured like the verdict it names.
    "matcher": {"id": "byName", "options": "outcome"},
    "properties": [
        {
            "id": "mappings",
            "value": [
                {
                    "type": "value",
                    "options": {
                        outcome: {"color": color, "index": index}
                        for outcome, (color, index) in OUTCOME_COLOURS.items()
                    },
                }
            ],
        },
        {"id": "custom.cellOptions", "value": {"type": "color-background"}},
    ],
}


def variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


DATASOURCE_VARIABLE = {
    "name": "datasource",
    "label": "Data source",
    "type": "datasource",
    "query": "prometheus",
    "current": {},
    "hide": 0,
}


def panel_json(panel: Panel, index: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
        for i, (expr, legend) in enumerate(panel.exprs)
    ]
    if panel.kind == "table":
        for target in targets:
            target.update({"instant": True, "format": "table"})
    return {
        "id": index + 1,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "targets": targets,
        "fieldConfig": {
            "defaults": {"unit": panel.unit, **panel.defaults},
            "overrides": list(panel.overrides),
        },
        "options": panel.options,
    }


def dashboard(
    uid: str, title: str, description: str, panels: list[Panel], variables: list[dict[str, Any]]
) -> dict[str, Any]:
    laid_out, x, y, row_height = [], 0, 0, 0
    for index, panel in enumerate(panels):
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        laid_out.append(panel_json(panel, index, x, y))
        x, row_height = x + panel.width, max(row_height, panel.height)
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["monitor"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [DATASOURCE_VARIABLE, *variables]},
        "annotations": {"list": []},
        "links": [
            {
                "title": "monitor dashboards",
                "type": "dashboards",
                "tags": ["monitor"],
                "asDropdown": True,
            }
        ],
        "panels": laid_out,
    }


SUITE_MODEL = [
    variable("suite", "Suite", "label_values(monitor_runs_finished_total, suite)"),
    variable("model", "Model", "label_values(monitor_runs_finished_total, model)"),
]

BAND = (
    # The interval's bounds: thin dotted lines beside their score (Grafana's fill between
    # two series needs one fixed series name, which a band per suite x model has not).
    *(
        {
            "matcher": {"id": "byFrameRefID", "options": ref},
            "properties": [
                {"id": "custom.lineWidth", "value": 1},
                {"id": "custom.lineStyle", "value": {"fill": "dot", "dash": [0, 10]}},
            ],
        }
        for ref in ("B", "C")
    ),
    {
        # The baseline: a dashed line beside the score it is compared with.
        "matcher": {"id": "byFrameRefID", "options": "D"},
        "properties": [
            {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
        ],
    },
)


def overview() -> dict[str, Any]:
    panels = [
        Panel(
            "Models monitored",
            "Models that a suite runs on, or that have a run in the store.",
            "short",
            (("count(count by (model) (monitor_runs_finished_total))", "models"),),
            kind="stat",
            width=6,
            height=5,
        ),
        Panel(
            "Runs succeeded (24h)",
            "Runs that finished with status succeeded in the last 24 hours.",
            "short",
            (
                (
                    'sum(increase(monitor_runs_finished_total{status="succeeded"}[24h])) or vector(0)',  # noqa: E501
                    "succeeded",
                ),
            ),
            kind="stat",
            width=6,
            height=5,
        ),
        Panel(
            "Runs failed or interrupted (24h)",
            "Runs that failed (endpoint errors, error budget, dataset) "
            "or were interrupted by a shutdown, in the last 24 hours.",
            "short",
            (
                (
                    'sum(increase(monitor_runs_finished_total{status=~"failed|interrupted"}[24h])) or vector(0)',  # noqa: E501
                    "failed",
                ),
            ),
            kind="stat",
            width=6,
            height=5,
            defaults=bad_from_one("orange"),
            options=STAT_OPTIONS,
        ),
        Panel(
            "Store up",
            "1 when the daemon's store answered the last scrape.",
            "bool_yes_no",
            (("min(monitor_store_up)", "store"),),
            kind="stat",
            width=6,
            height=5,
            defaults=OK_WHEN_ONE,
            options=STAT_OPTIONS,
        ),
        Panel(
            "Latest scores",
            "The latest succeeded run's score for every suite, model and metric, on the "
            "metric's own scale: 0-1 for ratios (accuracy 0.93), 0-100 for BLEU and chrF, "
            "the data's units for error metrics (docs/metrics.md, Scales).",
            "none",
            ((f"monitor_eval_score{{{PAIR}}}", SERIES),),
            kind="table",
            width=12,
            defaults={"decimals": 3},
        ),
        Panel(
            "Latest verdicts",
            "The outcome of each suite x model's latest verdict against its baseline "
            "(regressed, inconclusive, improved, pass); see docs/verdicts.md.",
            "short",
            (
                (
                    f"monitor_verdict_outcome{{{PAIR}}} == 1",
                    "{{suite}} / {{model}}: {{outcome}}",
                ),
            ),
            kind="table",
            width=12,
            overrides=(VERDICT_OUTCOME_COLUMN,),
        ),
        Panel(
            "Models regressed",
            "Suite x model pairs whose latest verdict is regressed (red from 1).",
            "short",
            (('sum(monitor_verdict_outcome{outcome="regressed"}) or vector(0)', "regressed"),),
            kind="stat",
            width=12,
            height=5,
            defaults=bad_from_one(),
            options=STAT_OPTIONS,
        ),
        Panel(
            "Time since last success",
            "Seconds since each suite x model last finished a succeeded run; "
            "a growing value means evaluations stopped or keep failing.",
            "s",
            (
                (
                    f"time() - monitor_last_success_timestamp_seconds{{{PAIR}}}",
                    "{{suite}} / {{model}}",
                ),
            ),
            kind="table",
            width=12,
        ),
        Panel(
            "Firing alerts",
            "Alerts of monitor's own rules that are firing now (see GET /v1/alerts).",
            "short",
            (('sum(monitor_alerts{state="firing"}) or vector(0)', "firing"),),
            kind="stat",
            width=12,
            height=5,
            defaults=bad_from_one(),
            options=STAT_OPTIONS,
        ),
        Panel(
            "Undeliverable notifications",
            "Alert notifications given up on after their last attempt (dead letters).",
            "short",
            (("sum(monitor_alert_dead_letters) or vector(0)", "dead letters"),),
            kind="stat",
            width=12,
            height=5,
            defaults=bad_from_one(),
            options=STAT_OPTIONS,
        ),
    ]
    return dashboard(
        "monitor-overview",
        "monitor / Overview",
        "Every monitored model at a glance: runs, latest scores, freshness, alerts.",
        panels,
        SUITE_MODEL,
    )


def model_quality() -> dict[str, Any]:
    metric_var = variable("metric", "Metric", "label_values(monitor_eval_score, metric)")
    selector = f'{PAIR}, metric=~"$metric"'
    panels = [
        Panel(
            "Score with 95% interval",
            "Each succeeded run's score over time; the band is its 95% "
            "confidence interval (Wilson for proportions); the dashed line is the "
            "active baseline run's score. Each series is on its metric's scale: percent for "
            "ratios, 0-100 for BLEU and chrF, plain numbers for error metrics.",
            "none",
            (
                (f"monitor_eval_score{{{selector}}}", SERIES),
                (f"monitor_eval_score_lower{{{selector}}}", f"{SERIES} lower"),
                (f"monitor_eval_score_upper{{{selector}}}", f"{SERIES} upper"),
                (f"monitor_baseline_score{{{selector}}}", f"baseline {SERIES}"),
            ),
            width=24,
            height=10,
            overrides=(*BAND, *scale_overrides()),
        ),
        Panel(
            "Interval width",
            "Width of the 95% interval: wide intervals mean too few cases to see a small change.",
            "none",
            (
                (
                    f"monitor_eval_score_upper{{{selector}}} - monitor_eval_score_lower{{{selector}}}",  # noqa: E501
                    SERIES,
                ),
            ),
            width=12,
            overrides=scale_overrides(),
        ),
        Panel(
            "Change against the baseline",
            "Latest verdict: new minus baseline over the paired cases, per metric "
            "(negative is worse for scores, better for error metrics), on the metric's "
            "scale (a ratio's change in percentage points).",
            "none",
            ((f"monitor_verdict_delta{{{selector}}}", SERIES),),
            width=12,
            overrides=scale_overrides(),
        ),
        Panel(
            "Verdict p-value",
            "Latest verdict: one-sided, Holm-adjusted p-value per metric; below the "
            "suite's alpha (0.05 by default) the change is significant.",
            "none",
            ((f"monitor_verdict_p_value{{{selector}}}", SERIES),),
            width=12,
        ),
        Panel(
            "Latest scores",
            "Latest succeeded run's score per suite, model and metric, on the metric's own "
            "scale: 0-1 for ratios, 0-100 for BLEU and chrF, the data's units for error "
            "metrics (docs/metrics.md, Scales).",
            "none",
            ((f"monitor_eval_score{{{selector}}}", SERIES),),
            kind="table",
            width=12,
            defaults={"decimals": 3},
        ),
        Panel(
            "Group fairness of the latest run",
            "fairlearn's demographic parity difference and ratio and equalized odds "
            "difference over a suite's fairness.groups field, for the latest succeeded run "
            "of each suite with fairness, with their 95% bootstrap intervals. A difference "
            "of 0 and a ratio of 1 are parity; the fairness rule fires beyond its value.",
            "none",
            (
                (f"monitor_suite_fairness{{{PAIR}}}", FAIR_SERIES),
                (f"monitor_suite_fairness_lower{{{PAIR}}}", f"{FAIR_SERIES} low"),
                (f"monitor_suite_fairness_upper{{{PAIR}}}", f"{FAIR_SERIES} high"),
            ),
            width=24,
            defaults={"decimals": 3},
        ),
    ]
    return dashboard(
        "monitor-model-quality",
        "monitor / Model quality",
        "Evaluation scores over time per suite and model, with confidence bands; group "
        "fairness of the latest run.",
        panels,
        [*SUITE_MODEL, metric_var],
    )


def latency_quantile(q: float) -> tuple[str, str]:
    buckets = 'monitor_model_request_duration_seconds_bucket{model=~"$model"}'
    return (
        f"histogram_quantile({q}, sum by (model, le) (rate({buckets}[$__rate_interval])))",
        f"{{{{model}}}} p{round(q * 100)}",
    )


def request_panels() -> list[Panel]:
    requests = 'monitor_model_requests_total{model=~"$model"}'
    failed = 'monitor_model_requests_total{model=~"$model", outcome!="ok"}'
    return [
        Panel(
            "Model request latency",
            "Quantiles (p50, p95, p99) of the duration of requests to each model endpoint, "
            "retries counted one by one, failures included (a timeout counts its full wait).",
            "s",
            (latency_quantile(0.5), latency_quantile(0.95), latency_quantile(0.99)),
            width=12,
        ),
        Panel(
            "Model requests by outcome",
            "Requests per second to model endpoints: ok, rate_limited (429), http_status, "
            "timeout, connection, bad_response. Retries count; a case that needed three "
            "tries is three requests.",
            "reqps",
            (
                (
                    f"sum by (outcome) (rate({requests}[$__rate_interval]))",
                    "{{outcome}}",
                ),
            ),
            width=12,
        ),
        Panel(
            "Model request error ratio",
            "Share of requests to each model that did not end ok (any outcome but ok, "
            "retries included); the Prometheus rule MonitorModelEndpointErrors fires on it.",
            "percentunit",
            (
                (
                    f"sum by (model) (rate({failed}[$__rate_interval])) / "
                    f"sum by (model) (rate({requests}[$__rate_interval]))",
                    "{{model}}",
                ),
            ),
            width=12,
        ),
        Panel(
            "Failed cases in the latest run",
            "Share of the latest finished run's cases that failed (timeout, http_status, "
            "bad_response, ...), per suite x model; above max_error_rate the run fails.",
            "percentunit",
            (
                (
                    f"monitor_last_run_case_errors{{{PAIR}}} / monitor_last_run_cases{{{PAIR}}}",
                    "{{suite}} / {{model}}",
                ),
            ),
            width=12,
        ),
    ]


def usage_panels() -> list[Panel]:
    return [
        Panel(
            "Tokens per hour",
            "Tokens of the runs that finished in the last hour, by kind (prompt, completion); "
            "runs whose endpoint reported no usage are not counted.",
            "short",
            (
                (
                    f"sum by (kind, role) (increase(monitor_tokens_total{{{PAIR}}}[1h]))",
                    "{{kind}}",
                ),
            ),
            width=12,
        ),
        Panel(
            "Cost per day",
            "Cost of the runs that finished in the last 24 hours, in the currency of the "
            "model's price (in the legend); runs with unknown usage or no price are not counted.",
            "none",
            (
                (
                    f"sum by (suite, model, currency, role) (increase(monitor_cost_total{{{PAIR}}}[24h]))",  # noqa: E501
                    "{{suite}} / {{model}} ({{currency}})",
                ),
            ),
            width=12,
            overrides=currency_overrides(),
        ),
        Panel(
            "Cost of the latest run",
            "What the latest finished run of each suite x model cost, in the currency of the "
            "model's price; absent when its usage or price is unknown.",
            "none",
            (
                (
                    f"monitor_last_run_cost{{{PAIR}}}",
                    "{{suite}} / {{model}} ({{currency}})",
                ),
            ),
            width=12,
            overrides=currency_overrides(),
        ),
    ]


def operations() -> dict[str, Any]:
    panels = [
        *request_panels(),
        Panel(
            "Runs per hour by status",
            "Rate of finished runs by status (succeeded, failed, interrupted).",
            "short",
            (
                (
                    f"sum by (status) (rate(monitor_runs_finished_total{{{PAIR}}}[$__rate_interval])) * 3600",  # noqa: E501
                    "{{status}}",
                ),
            ),
            width=12,
        ),
        Panel(
            "Runs queued and running",
            "Runs waiting for their turn (queued) and in progress (running) now.",
            "short",
            ((f"sum by (status) (monitor_runs{{{PAIR}}})", "{{status}}"),),
            width=12,
        ),
        Panel(
            "Run duration",
            "Wall time of the latest finished run of each suite x model.",
            "s",
            ((f"monitor_last_run_duration_seconds{{{PAIR}}}", "{{suite}} / {{model}}"),),
            width=12,
        ),
        Panel(
            "Time since last run",
            "Seconds since the latest run of each suite x model finished, whatever its status.",
            "s",
            ((f"time() - monitor_last_run_timestamp_seconds{{{PAIR}}}", "{{suite}} / {{model}}"),),
            width=12,
        ),
        *usage_panels(),
        Panel(
            "Store up",
            "1 when the store answered the scrape; 0 means the daemon cannot read its database.",
            "bool_yes_no",
            (("min(monitor_store_up)", "store"),),
            width=12,
        ),
        Panel(
            "Alert outbox backlog",
            "Notifications waiting for delivery; a growing backlog means a sink is down.",
            "short",
            (("sum(monitor_alert_outbox_backlog)", "pending"),),
            width=12,
        ),
        Panel(
            "Alert deliveries by outcome",
            "Delivery attempts per minute: delivered, failed (retried) and dead.",
            "short",
            (
                (
                    "sum by (outcome) (rate(monitor_alert_deliveries_total[$__rate_interval])) * 60",  # noqa: E501
                    "{{outcome}}",
                ),
            ),
            width=12,
        ),
    ]
    return dashboard(
        "monitor-operations",
        "monitor / Operations",
        "Is monitor itself healthy: model requests, runs, durations, freshness, tokens, "
        "cost, store, alert delivery.",
        panels,
        SUITE_MODEL,
    )


def drift() -> dict[str, Any]:
    variables = [
        variable("stream", "Stream", "label_values(monitor_drift_window_rows, stream)"),
        variable(
            "column",
            "Column",
            'label_values(monitor_drift_column_drifted{stream=~"$stream"}, column)',
        ),
    ]
    col = 'stream=~"$stream", column=~"$column"'
    panels = [
        Panel(
            "Dataset drift share",
            "Share of monitored columns that drifted in each stream's latest judged window; "
            "the stream counts as drifted when it reaches its drift_share.",
            "percentunit",
            (('monitor_drift_share{stream=~"$stream"}', "{{stream}}"),),
            width=12,
        ),
        Panel(
            "Streams drifted",
            "1 when the latest window of the stream drifted as a dataset (red).",
            "bool_yes_no",
            (('monitor_drift_dataset_drifted{stream=~"$stream"}', "{{stream}}"),),
            kind="stat",
            width=12,
            defaults=bad_from_one(),
            options=STAT_OPTIONS,
        ),
        Panel(
            "Drifted columns over time",
            "1 while a column is drifted (by its first method); one row per column.",
            "short",
            ((f"monitor_drift_column_drifted{{{col}}}", "{{stream}} / {{column}}"),),
            kind="heatmap",
            width=24,
            height=9,
        ),
        Panel(
            "Test p-values",
            "p-values of the drift tests (KS, chi-square) per column; low means the window "
            "differs from the reference.",
            "none",
            ((f"monitor_drift_p_value{{{col}}}", "{{stream}} / {{column}} / {{method}}"),),
            width=12,
        ),
        Panel(
            "Distances",
            "Distances between the window and the reference (Wasserstein, PSI, "
            "Jensen-Shannon, Hellinger, L-infinity) per column.",
            "none",
            ((f"monitor_drift_distance{{{col}}}", "{{stream}} / {{column}} / {{method}}"),),
            width=12,
        ),
        Panel(
            "Missing values",
            "Share of missing values per column in the latest window.",
            "percentunit",
            ((f"monitor_drift_missing_share{{{col}}}", "{{stream}} / {{column}}"),),
            width=12,
        ),
        Panel(
            "Rows ingested per minute",
            "Rows accepted by the ingest API per stream.",
            "short",
            (
                (
                    'sum by (stream) (rate(monitor_stream_rows_ingested_total{stream=~"$stream"}[$__rate_interval])) * 60',  # noqa: E501
                    "{{stream}}",
                ),
            ),
            width=12,
        ),
    ]
    return dashboard(
        "monitor-drift",
        "monitor / Drift",
        "Production data against its reference: drift per stream and column over time.",
        panels,
        variables,
    )


def production_performance() -> dict[str, Any]:
    variables = [
        variable("stream", "Stream", "label_values(monitor_drift_window_rows, stream)"),
        variable(
            "metric",
            "Metric",
            'label_values(monitor_stream_performance{stream=~"$stream"}, metric)',
        ),
    ]
    sel = 'stream=~"$stream", metric=~"$metric"'
    shadow = "monitor_stream_shadow_divergence"
    one = '{stream=~"$stream"}'
    panels = [
        Panel(
            "Realized performance against the reference",
            "Each stream's newest scored window on its labelled records (with its 95% "
            "interval) beside the reference performance (or target) it is judged against.",
            "none",
            (
                (f"monitor_stream_performance{{{sel}}}", "{{stream}} / {{metric}}"),
                (f"monitor_stream_performance_lower{{{sel}}}", "{{stream}} / {{metric}} low"),
                (f"monitor_stream_performance_upper{{{sel}}}", "{{stream}} / {{metric}} high"),
                (
                    f"monitor_stream_performance_reference{{{sel}}}",
                    "{{stream}} / {{metric}} reference",
                ),
            ),
            width=24,
            height=9,
        ),
        Panel(
            "Judged worse",
            "1 when the newest scored window is judged worse than the reference for the "
            "metric (one-sided test, Holm-adjusted; see docs/drift.md).",
            "bool_yes_no",
            ((f"monitor_stream_performance_worse{{{sel}}}", "{{stream}} / {{metric}}"),),
            kind="stat",
            width=12,
        ),
        Panel(
            "p-value of 'worse'",
            "Holm-adjusted one-sided p-value of the window being worse (accuracy, MAE, "
            "RMSE, MAPE); low means a real drop.",
            "none",
            ((f"monitor_stream_performance_p_value{{{sel}}}", "{{stream}} / {{metric}}"),),
            width=12,
        ),
        Panel(
            "Labelled share",
            "Share of the newest scored window's records whose label has arrived.",
            "percentunit",
            (('monitor_stream_labelled_share{stream=~"$stream"}', "{{stream}}"),),
            width=12,
        ),
        Panel(
            "Final",
            "1 once the window's label delay has passed; 0 while it is provisional or "
            "re-opened by late labels.",
            "bool_yes_no",
            (('monitor_stream_performance_final{stream=~"$stream"}', "{{stream}}"),),
            kind="stat",
            width=12,
        ),
        Panel(
            "Shadow divergence",
            "How far the shadow model's predictions stray from production's in each "
            "stream's latest window, with its interval: the disagreement share "
            "(categorical, Wilson) or the mean difference shadow minus production "
            "(numerical, paired t). The divergence rule fires on the interval.",
            "none",
            (
                (f"{shadow}{one}", "{{stream}} / {{measure}}"),
                (f"{shadow}_lower{one}", "{{stream}} / {{measure}} low"),
                (f"{shadow}_upper{one}", "{{stream}} / {{measure}} high"),
            ),
            width=12,
        ),
        Panel(
            "Shadow agreement",
            "Share of the latest window's records on which the shadow model agrees with "
            "production (numerical: within shadow.tolerance).",
            "percentunit",
            (('monitor_stream_shadow_agreement{stream=~"$stream"}', "{{stream}}"),),
            width=12,
        ),
    ]
    panels += segment_panels()
    return dashboard(
        "monitor-production-performance",
        "monitor / Production performance",
        "Model quality on production traffic, from labels that arrive later: realized "
        "metrics per window, judged against the reference, per segment and with group "
        "fairness; a shadow model against production on the same records.",
        panels,
        variables,
    )


def segment_panels() -> list[Panel]:
    """Per segment of a stream's ``segments`` columns, the metrics and their largest gap
    (in the metric's scale), and the group fairness measures over ``fairness.groups``."""
    sel = 'stream=~"$stream", metric=~"$metric"'
    fair, gap = "monitor_stream_fairness", "monitor_stream_segment_gap"
    one = '{stream=~"$stream"}'
    return [
        Panel(
            "Performance per segment",
            "A metric of each segment (a value of a segments column; at most max_segments "
            "per column, the rest __other__) in each stream's newest scored window.",
            "none",
            (
                (
                    f"monitor_stream_segment_performance{{{sel}}}",
                    "{{stream}} / {{column}}={{segment}} / {{metric}}",
                ),
            ),
            width=12,
            overrides=scale_overrides(),
        ),
        Panel(
            "Largest gap between segments",
            "Per column and metric, the best segment's value minus the worst's in the "
            "newest scored window (never negative; in the metric's scale), with the 95% "
            "bootstrap interval of the difference between those two segments: a lower "
            "end at or below 0 means the gap may be noise.",
            "none",
            (
                (f"{gap}{{{sel}}}", "{{stream}} / {{column}} / {{metric}}"),
                (f"{gap}_lower{{{sel}}}", "{{stream}} / {{column}} / {{metric}} lower"),
                (f"{gap}_upper{{{sel}}}", "{{stream}} / {{column}} / {{metric}} upper"),
            ),
            width=12,
            overrides=scale_overrides(),
        ),
        Panel(
            "Group fairness",
            "fairlearn's demographic parity difference and ratio and equalized odds "
            "difference over the fairness.groups column in the newest scored window, with "
            "their 95% bootstrap intervals. A difference of 0 and a ratio of 1 are parity; "
            "the fairness rule fires beyond its value.",
            "none",
            (
                (f"{fair}{one}", "{{stream}} / {{groups}} / {{measure}}"),
                (f"{fair}_lower{one}", "{{stream}} / {{groups}} / {{measure}} low"),
                (f"{fair}_upper{one}", "{{stream}} / {{groups}} / {{measure}} high"),
            ),
            width=24,
            defaults={"decimals": 3},
        ),
    ]


DASHBOARDS = {
    "overview": overview,
    "model-quality": model_quality,
    "drift": drift,
    "production-performance": production_performance,
    "operations": operations,
}


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {
        f"{name}.json": json.dumps(build(), indent=2) + "\n" for name, build in DASHBOARDS.items()
    }


if __name__ == "__main__":
    for name, text in render().items():
        (HERE / "dashboards" / name).write_text(text)
        print(f"wrote grafana/dashboards/{name}")
