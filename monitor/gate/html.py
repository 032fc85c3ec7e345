"""The gate's report as an HTML page, with pictures: what ``GET /v1/runs/{id}/report.html``
serves.

It says what the Markdown comment says (the verdict and why, both runs, every compared
metric, the degraded and improved cases, cost and latency) and draws it: each
comparison's change against its tolerance (:mod:`monitor.gate.chart`, as SVG), each
metric's trend over the recent runs of the suite x model (:mod:`monitor.gate.trend`) and
a word-level diff of the answers that changed (:mod:`monitor.gate.worddiff`).

As the drift report page (:mod:`monitor.streams.html`) does, every value goes through a
Mako template whose default filter escapes HTML, the page has no script, and it declares
(and the daemon serves it under) a Content-Security-Policy that lets nothing load or run
and no style apply but its own, by hash: model answers on it stay text.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from monitor import __version__
from monitor.gate import formatting as fmt
from monitor.gate.chart import bar
from monitor.gate.markdown import changed_text
from monitor.gate.summary import detail, headline, label, word
from monitor.gate.trend import HEIGHT, WIDTH, trends
from monitor.gate.worddiff import word_diff
from monitor.wire.runs import RunOut

if TYPE_CHECKING:
    from monitor.gate.report import GateReport

__all__ = ["CONTENT_SECURITY_POLICY", "TREND_RUNS", "render_html"]

# Runs of the suite x model a trend covers by default.
TREND_RUNS = 30

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:72em;color:#1f2328}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.5em}h3{font-size:1em;margin:.8em 0 .2em}
table{border-collapse:collapse}td,th{padding:2px 10px;text-align:left;vertical-align:top;
border-bottom:1px solid #d0d7de}th{font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.nw{white-space:nowrap}.summary td,.summary th{border:0}
.outcome{font-weight:600}.regressed{color:#cf222e}.improved{color:#1a7f37}
.inconclusive{color:#9a6700}.warning{border-left:6px solid #9a6700;padding-left:.6em}
.axis{stroke:#8c959f}.zero{stroke:#57606a;stroke-dasharray:3 2}
.tolerance{stroke:#cf222e;stroke-width:3}.interval{stroke:#0969da;stroke-width:6}
.delta{fill:#0550ae}.line{fill:none;stroke:#0969da;stroke-width:2}
.band{fill:#0969da;fill-opacity:.15}.point{fill:#0969da}
.other-dataset{fill:#fff;stroke:#0969da;stroke-width:2}
.mark-baseline{fill:#8250df}.mark-current{fill:#cf222e}
.label{font-size:11px;fill:#57606a}.notes{color:#57606a}.legend{font-size:12px}
del{background:#ffebe9;color:#82071e}ins{background:#dafbe1;color:#116329;text-decoration:none}
.diff{font-family:ui-monospace,monospace;font-size:13px}
"""

# Pixels of one change chart (one per comparison).
CHART_WIDTH, CHART_HEIGHT = 480, 26


@cache
def content_security_policy() -> str:
    """Nothing loads, nothing runs, only the page's own style block applies (by hash)."""
    digest = hashlib.sha256(_STYLE.encode("utf-8")).digest()
    style = "sha256-" + base64.b64encode(digest).decode("ascii")
    return (
        f"default-src 'none'; style-src '{style}'; img-src 'none'; "
        "base-uri 'none'; form-action 'none'"
    )


# The policy the daemon sends as a header; it adds what a <meta> element cannot carry.
CONTENT_SECURITY_POLICY = content_security_policy() + "; frame-ancestors 'none'"


def render_html(
    report: GateReport, history: Sequence[RunOut] = (), *, version: str = __version__
) -> str:
    """The page of ``report``; ``history`` holds the recent runs of its suite x model that
    the trends are drawn over (the run itself and its baseline are added when absent)."""
    v = report.verdict
    runs = {r.id: r for r in history if (r.suite, r.model) == (report.run.suite, report.run.model)}
    runs.setdefault(report.run.id, report.run)
    if report.baseline.model == report.run.model:
        runs.setdefault(report.baseline.id, report.baseline)
    shown = [m for m in v.metrics if not m.slice] + [
        m for m in v.metrics if m.slice and m.outcome != "pass"
    ]
    changes = [
        {"change": c, "diff": word_diff(c.baseline_prediction, c.new_prediction)}
        if changed_text(c)
        else {"change": c, "diff": None}
        for c in v.changes
    ]
    return str(
        _template().render(
            report=report,
            title=f"{word(v.outcome)}: {headline(v, report.baseline)}",
            why=detail(v),
            bars=[bar(m) for m in shown],
            rows=v.metrics,
            label=label,
            changes=changes,
            trends=trends(
                list(runs.values()), baseline_run=report.baseline.id, current_run=report.run.id
            ),
            trend_size=(WIDTH, HEIGHT),
            chart_size=(CHART_WIDTH, CHART_HEIGHT),
            operations=_operations(report.baseline, report.run),
            fmt=fmt,
            style=_STYLE,
            csp=content_security_policy(),
            version=version,
        )
    )


@cache
def _template() -> Any:
    from mako.template import Template

    source = resources.files("monitor.gate").joinpath("report.html.mako")
    # ``h`` escapes every ${...} (markupsafe: & < > " '); the template never turns it off.
    return Template(
        source.read_text(encoding="utf-8"), default_filters=["h"], strict_undefined=True
    )


def _operations(baseline: RunOut, run: RunOut) -> list[tuple[str, str, str]]:
    """Rows of the cost and latency table: what the Markdown comment shows, unescaped
    (the template escapes)."""

    def ops(r: RunOut) -> list[str]:
        o = r.operations
        errors = f"{r.n_errors:,} ({fmt.percent(r.n_errors / r.n_cases) if r.n_cases else 'n/a'})"
        if o is None:
            return [fmt.count(r.n_cases), errors, *["unknown"] * 6, fmt.seconds(r.duration_seconds)]
        return [
            fmt.count(r.n_cases),
            errors,
            fmt.count(o.prompt_tokens),
            fmt.count(o.completion_tokens),
            fmt.money(o.cost, o.currency),
            fmt.seconds(o.latency_p50),
            fmt.seconds(o.latency_p95),
            fmt.seconds(o.latency_p99),
            fmt.seconds(r.duration_seconds),
        ]

    names = ["Cases", "Errors", "Prompt tokens", "Completion tokens", "Cost"]
    names += ["Latency p50", "Latency p95", "Latency p99", "Duration"]
    return list(zip(names, ops(baseline), ops(run), strict=True))
