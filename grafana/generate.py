"""Generate the Grafana dashboards in ``grafana/dashboards/`` from compact definitions.

Run ``python grafana/generate.py`` after editing; a test fails when the committed JSON
differs from what this script writes, so the two never drift apart. Every panel gets a
description and a unit, queries the ``$datasource`` variable (never ``${DS_PROMETHEUS}``,
which breaks provisioning), and uses ``$__rate_interval`` in rates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PAIR = 'suite=~"$suite", model=~"$model"'


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
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": list(panel.overrides)},
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
    {
        "matcher": {"id": "byFrameRefID", "options": "B"},
        "properties": [
            {"id": "custom.fillBelowTo", "value": "upper"},
            {"id": "custom.lineWidth", "value": 0},
        ],
    },
    {
        "matcher": {"id": "byFrameRefID", "options": "C"},
        "properties": [
            {"id": "custom.lineWidth", "value": 0},
            {"id": "custom.hideFrom", "value": {"legend": True, "tooltip": False, "viz": False}},
        ],
    },
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
        ),
        Panel(
            "Store up",
            "1 when the daemon's store answered the last scrape.",
            "bool_yes_no",
            (("min(monitor_store_up)", "store"),),
            kind="stat",
            width=6,
            height=5,
        ),
        Panel(
            "Latest scores",
            "The latest succeeded run's score for every suite, model and metric.",
            "percentunit",
            ((f"monitor_eval_score{{{PAIR}}}", "{{suite}} / {{model}} / {{metric}}"),),
            kind="table",
            width=12,
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
        ),
        Panel(
            "Models regressed",
            "Suite x model pairs whose latest verdict is regressed.",
            "short",
            (('sum(monitor_verdict_outcome{outcome="regressed"}) or vector(0)', "regressed"),),
            kind="stat",
            width=12,
            height=5,
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
        ),
        Panel(
            "Undeliverable notifications",
            "Alert notifications given up on after their last attempt (dead letters).",
            "short",
            (("sum(monitor_alert_dead_letters) or vector(0)", "dead letters"),),
            kind="stat",
            width=12,
            height=5,
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
            "active baseline run's score.",
            "percentunit",
            (
                (f"monitor_eval_score{{{selector}}}", "{{suite}} / {{model}} / {{metric}}"),
                (f"monitor_eval_score_lower{{{selector}}}", "lower"),
                (f"monitor_eval_score_upper{{{selector}}}", "upper"),
                (f"monitor_baseline_score{{{selector}}}", "baseline {{model}} / {{metric}}"),
            ),
            width=24,
            height=10,
            overrides=BAND,
        ),
        Panel(
            "Interval width",
            "Width of the 95% interval: wide intervals mean too few cases to see a small change.",
            "percentunit",
            (
                (
                    f"monitor_eval_score_upper{{{selector}}} - monitor_eval_score_lower{{{selector}}}",  # noqa: E501
                    "{{suite}} / {{model}} / {{metric}}",
                ),
            ),
            width=12,
        ),
        Panel(
            "Change against the baseline",
            "Latest verdict: new minus baseline over the paired cases, per metric "
            "(negative is worse for scores, better for error metrics).",
            "short",
            ((f"monitor_verdict_delta{{{selector}}}", "{{suite}} / {{model}} / {{metric}}"),),
            width=12,
        ),
        Panel(
            "Verdict p-value",
            "Latest verdict: one-sided, Holm-adjusted p-value per metric; below the "
            "suite's alpha (0.05 by default) the change is significant.",
            "short",
            ((f"monitor_verdict_p_value{{{selector}}}", "{{suite}} / {{model}} / {{metric}}"),),
            width=12,
        ),
        Panel(
            "Latest scores",
            "Latest succeeded run's score per suite, model and metric.",
            "percentunit",
            ((f"monitor_eval_score{{{selector}}}", "{{suite}} / {{model}} / {{metric}}"),),
            kind="table",
            width=12,
        ),
    ]
    return dashboard(
        "monitor-model-quality",
        "monitor / Model quality",
        "Evaluation scores over time per suite and model, with confidence bands.",
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
            "short",
            (
                (
                    f"sum by (suite, model, currency, role) (increase(monitor_cost_total{{{PAIR}}}[24h]))",  # noqa: E501
                    "{{suite}} / {{model}} ({{currency}})",
                ),
            ),
            width=12,
        ),
        Panel(
            "Cost of the latest run",
            "What the latest finished run of each suite x model cost, in the currency of the "
            "model's price; absent when its usage or price is unknown.",
            "short",
            (
                (
                    f"monitor_last_run_cost{{{PAIR}}}",
                    "{{suite}} / {{model}} ({{currency}})",
                ),
            ),
            width=12,
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
            "1 when the latest window of the stream drifted as a dataset.",
            "bool_yes_no",
            (('monitor_drift_dataset_drifted{stream=~"$stream"}', "{{stream}}"),),
            kind="stat",
            width=12,
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


DASHBOARDS = {
    "overview": overview,
    "model-quality": model_quality,
    "drift": drift,
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
