"""The gate's report as a GitHub-flavoured Markdown pull-request comment.

Top to bottom: the verdict line, the runs and dataset (a warning when the dataset changed),
the metrics table (overall rows, then slices that did not pass; passing slices fold into a
``<details>``), a chart of each shown row's change against its tolerance
(:mod:`monitor.gate.chart`), why each flagged row is flagged, the degraded and improved
cases with a word-level diff of the answers that changed (:mod:`monitor.gate.worddiff`),
tokens, cost and latency of both runs, the judges' requests, errors, tokens and cost (apart
from the model's), the group fairness measures of both runs, and a footer with monitor's
version. Untrusted text goes through :func:`monitor.gate.format.cell`, so no input can
break a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from monitor import __version__
from monitor.gate import formatting as fmt
from monitor.gate.chart import chart_lines
from monitor.gate.summary import detail, headline, label, review_note, word
from monitor.gate.worddiff import markdown_diff
from monitor.records import JUDGE_CORRECTED
from monitor.wire.runs import RunOut
from monitor.wire.verdicts import CaseChangeOut, MetricComparisonOut

if TYPE_CHECKING:
    from monitor.gate.report import GateReport

# The first line of every comment, so a bot can find and replace its previous one.
MARKER = "<!-- monitor-gate -->"
# GitHub refuses comments over 65,536 characters: long lists are capped here; the JSON
# report keeps everything.
CHANGE_ROWS = 20
SLICE_ROWS = 100

_METRIC_HEADER = [
    "| Metric | Slice | Cases | Baseline | New | Delta | One-sided bound of delta"
    " | p (one-sided, adjusted) | Outcome |",
    "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | --- |",
]
_METRIC_LEGEND = (
    "Delta is new - baseline. Each row's p-value is one-sided, in the direction the row is"
    " judged in (worse; better for an improvement), and Holm-adjusted over every"
    " comparison; the bound is the same test's one-sided confidence bound of delta."
)
_CORRECTED_LEGEND = (
    "Rows marked *judge-corrected* are corrected for their judge's measured sensitivity and"
    " specificity (Rogan-Gladen): baseline, new, delta and bound estimate the true share;"
    " the p-value is the paired test's on the judged scores, which a correction of both"
    " runs leaves unchanged."
)
_CHANGE_HEADER = [
    "| Case | Metric | Baseline -> new | Input | Expected | Baseline prediction | New prediction |",
    "| --- | --- | --- | --- | --- | --- | --- |",
]


def render_markdown(report: GateReport, *, version: str = __version__) -> str:
    """The report as a pull-request comment. ``version`` names the monitor that rendered
    it in the footer."""
    v = report.verdict
    line = f"**{fmt.escape(word(v.outcome))}**: {fmt.escape(headline(v, report.baseline))}."
    why = detail(v)
    lines = [MARKER, "### monitor gate", ""]
    lines += [f"{line} {fmt.escape(why)}" if why else line, ""]
    if note := review_note(v):
        lines += [f"**Review**: {fmt.escape(note)}", ""]
    lines += _runs_lines(report)
    lines += _metrics_section(v.metrics)
    lines += _reasons_section(v.metrics)
    lines += _changes_section("Degraded cases", [c for c in v.changes if c.change != "improved"])
    lines += _changes_section("Improved cases", [c for c in v.changes if c.change == "improved"])
    lines += _operations_section(report.baseline, report.run)
    lines += _judges_section(report.baseline, report.run)
    lines += _fairness_section(report.baseline, report.run)
    lines.append(_footer(f"monitor {version}; verdict {v.id} of {fmt.when(v.created_at)}"))
    return "\n".join(lines) + "\n"


def render_failure_markdown(
    suite: str, model: str, run: RunOut | None, reason: str, *, version: str = __version__
) -> str:
    """The comment for an infrastructure failure (exit code 3): the run could not be
    completed, so the model was not judged. It gives the reason and, when the run exists,
    its status and error count; it never says the model regressed."""
    lines = [
        MARKER,
        "### monitor gate",
        "",
        f"**Infrastructure error**: {fmt.escape(suite)} on {fmt.escape(model)} was not"
        " judged. The evaluation could not be completed, so this says nothing about the"
        " model's quality: the endpoint or the monitor needs attention.",
        "",
        f"Reason: {fmt.escape(fmt.truncate(reason, 1000))}",
        "",
    ]
    if run is not None:
        share = fmt.percent(run.n_errors / run.n_cases) if run.n_cases else "n/a"
        lines += [
            f"Run {run.id}: status {run.status.value}, {run.n_errors:,} of {run.n_cases:,}"
            f" cases failed ({share}), started {fmt.when(run.started_at)}, finished"
            f" {fmt.when(run.finished_at)}; dataset `{fmt.short_hash(run.dataset_sha256)}`.",
            "",
        ]
    lines.append(_footer(f"monitor {version}"))
    return "\n".join(lines) + "\n"


def _runs_lines(report: GateReport) -> list[str]:
    run, base = report.run, report.baseline
    lines = [
        f"Run {run.id} ({run.n_cases:,} cases, finished {fmt.when(run.finished_at)}) vs"
        f" baseline run {base.id} ({base.n_cases:,} cases, finished"
        f" {fmt.when(base.finished_at)}); dataset `{fmt.short_hash(run.dataset_sha256)}`.",
        "",
    ]
    if run.model_version is not None:
        was = "" if base.model_version is None else f" (the baseline's: `{base.model_version}`)"
        lines += [f"Model version `{run.model_version}`{was}, from the registry alias.", ""]
    if report.verdict.dataset_changed:
        unpaired = max((m.unpaired for m in report.verdict.metrics), default=0)
        left_out = (
            f"; {unpaired:,} cases are in only one of the runs and were not compared"
            if unpaired
            else ""
        )
        lines += [
            "**Warning**: the dataset changed since the baseline (baseline"
            f" `{fmt.short_hash(base.dataset_sha256)}`, this run"
            f" `{fmt.short_hash(run.dataset_sha256)}`). Cases are paired by case id{left_out}.",
            "",
        ]
    return lines


def _metrics_section(rows: Sequence[MetricComparisonOut]) -> list[str]:
    """Overall rows, then slice rows that did not pass; passing slices fold away."""
    if not rows:
        return ["No metric was compared.", ""]
    shown = [m for m in rows if not m.slice] + [m for m in rows if m.slice and m.outcome != "pass"]
    folded = [m for m in rows if m.slice and m.outcome == "pass"]
    lines = ["#### Metrics", "", _METRIC_LEGEND, ""]
    if any(_corrected(m) for m in rows):
        lines += [_CORRECTED_LEGEND, ""]
    if shown:
        lines += [*_METRIC_HEADER, *map(_metric_row, shown), ""]
        lines += chart_lines(shown)
    if folded:
        lines += [
            "<details>",
            f"<summary>{len(folded):,} slice comparisons passed</summary>",
            "",
            *_METRIC_HEADER,
            *map(_metric_row, folded[:SLICE_ROWS]),
            "",
            *_more(len(folded) - SLICE_ROWS, "slice comparisons"),
            "</details>",
            "",
        ]
    return lines


def _metric_row(m: MetricComparisonOut) -> str:
    outcome = fmt.escape(m.outcome)
    metric = fmt.cell(m.metric) + (" (*judge-corrected*)" if _corrected(m) else "")
    return _row(
        metric,
        fmt.cell(m.slice) if m.slice else "(all)",
        fmt.count(m.n),
        fmt.num(m.baseline),
        fmt.num(m.new),
        fmt.signed(m.delta),
        fmt.bound(m.bound, m.bound_side, m.bound_level),
        fmt.p_value(m.p_adjusted),
        f"**{outcome}**" if m.outcome == "regressed" else outcome,
    )


def _corrected(m: MetricComparisonOut) -> bool:
    return JUDGE_CORRECTED in m.reason


def _reasons_section(rows: Sequence[MetricComparisonOut]) -> list[str]:
    flagged = [m for m in rows if m.outcome != "pass"]
    if not flagged:
        return []
    return ["#### Why", "", *(f"- {_reason_line(m)}" for m in flagged), ""]


def _reason_line(m: MetricComparisonOut) -> str:
    line = f"{fmt.escape(m.outcome)}, {fmt.escape(label(m))}: {fmt.escape(m.reason)}"
    notes = []
    if m.degraded is not None and m.improved is not None:
        notes.append(f"{m.degraded:,} cases pass to fail, {m.improved:,} fail to pass")
    if m.unpaired:
        notes.append(f"{m.unpaired:,} cases in one run only")
    return f"{line} ({'; '.join(notes)})" if notes else line


def _changes_section(title: str, changes: Sequence[CaseChangeOut]) -> list[str]:
    if not changes:
        return []
    rows = [
        _row(
            fmt.cell(c.case_id),
            fmt.cell(c.metric),
            f"{fmt.num(c.baseline_score)} -> {fmt.num(c.new_score)}",
            fmt.cell(c.input),
            fmt.cell(c.expected),
            fmt.cell(c.baseline_prediction),
            fmt.cell(c.new_prediction),
        )
        for c in changes[:CHANGE_ROWS]
    ]
    return [
        f"#### {title} ({len(changes):,})",
        "",
        *_CHANGE_HEADER,
        *rows,
        "",
        *_more(len(changes) - CHANGE_ROWS, "cases"),
        *_diffs_lines(changes[:CHANGE_ROWS]),
    ]


def _diffs_lines(changes: Sequence[CaseChangeOut]) -> list[str]:
    """A word-level diff of each case whose text answer changed wording."""
    items = [
        f"- {fmt.cell(c.case_id)}: {markdown_diff(c.baseline_prediction, c.new_prediction)}"
        for c in changes
        if changed_text(c)
    ]
    if not items:
        return []
    return [
        "Word-level diff of the answers, baseline to new (~~removed~~, **added**):",
        "",
        *items,
        "",
    ]


def changed_text(c: CaseChangeOut) -> bool:
    """Whether both answers are text and differ in their words."""
    old, new = c.baseline_prediction, c.new_prediction
    return isinstance(old, str) and isinstance(new, str) and old.split() != new.split()


def _operations_section(baseline: RunOut, run: RunOut) -> list[str]:
    rows = [
        ("Cases", "cases"),
        ("Errors", "errors"),
        ("Prompt tokens", "prompt_tokens"),
        ("Completion tokens", "completion_tokens"),
        ("Cost", "cost"),
        ("Latency p50", "latency_p50"),
        ("Latency p95", "latency_p95"),
        ("Latency p99", "latency_p99"),
        ("Duration", "duration"),
    ]
    return [
        "#### Cost and latency",
        "",
        f"| | Baseline (run {baseline.id}) | This run (run {run.id}) |",
        "| --- | ---: | ---: |",
        *(_row(name, _operation(baseline, key), _operation(run, key)) for name, key in rows),
        "",
    ]


def _judges_section(baseline: RunOut, run: RunOut) -> list[str]:
    """Each judge metric's judge, prompt hash, errors, tokens and cost, for both runs:
    the judges' cost is not in the model's cost above. A prompt hash that differs from
    the baseline's is flagged, since the scores are then not from the same judge."""
    if not run.judges and not baseline.judges:
        return []
    before = {j.metric: j for j in baseline.judges}
    rows = []
    for j in run.judges:
        old = before.get(j.metric)
        prompt = f"`{fmt.short_hash(j.prompt_sha256)}`"
        if old is not None and old.prompt_sha256 != j.prompt_sha256:
            prompt += f" (**changed**; baseline `{fmt.short_hash(old.prompt_sha256)}`)"
        elif old is None:
            prompt += " (not in the baseline)"
        rows.append(
            _row(
                fmt.cell(j.metric),
                fmt.cell(j.judge),
                prompt,
                f"{j.requests:,}" + (f" (+{j.cached:,} cached)" if j.cached else ""),
                f"{j.errors:,}",
                "n/a" if j.agreement is None else fmt.percent(j.agreement),
                fmt.count(j.prompt_tokens),
                fmt.count(j.completion_tokens),
                fmt.escape(fmt.money(j.cost, j.currency)),
                fmt.escape(fmt.money(old.cost, old.currency)) if old else "n/a",
            )
        )
    return [
        "#### Judges",
        "",
        "Judge requests, tokens and cost of this run, apart from the model's above. A judge"
        " error is an answer the judge failed to score; it has no score, never a made-up one."
        " Agreement (with judge_repeats) is the judge's mean agreement with itself.",
        "",
        "| Metric | Judge | Prompt | Requests | Judge errors | Agreement | Prompt tokens"
        " | Completion tokens | Cost | Baseline cost |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
    ]


def _fairness_section(baseline: RunOut, run: RunOut) -> list[str]:
    """The suite's group fairness measures (``fairness``) of this run with their interval,
    beside the baseline's: reported, not judged (an alert rule of kind ``fairness`` sets
    a limit)."""
    if not run.fairness:
        return []
    before = {f.measure: f for f in baseline.fairness}
    rows = []
    for f in run.fairness:
        old = before.get(f.measure)
        rows.append(
            _row(
                fmt.cell(f.measure),
                fmt.cell(f.groups),
                fmt.count(f.n),
                fmt.num(old.value) if old else "n/a",
                fmt.num(f.value),
                "n/a"
                if f.lower is None or f.upper is None
                else f"[{fmt.num(f.lower)}, {fmt.num(f.upper)}]",
            )
        )
    return [
        "#### Fairness",
        "",
        "Group fairness of the predictions across the groups (fairlearn's definitions):"
        " a difference of 0 and a ratio of 1 mean parity. The interval is a 95% bootstrap"
        " over cases.",
        "",
        "| Measure | Groups | Cases | Baseline | New | 95% interval |",
        "| --- | --- | ---: | ---: | ---: | --- |",
        *rows,
        "",
    ]


def _operation(run: RunOut, key: str) -> str:
    """One operational figure of a run; ``unknown`` (never 0) when it was not measured."""
    ops = run.operations
    if key == "cases":
        return fmt.count(run.n_cases)
    if key == "errors":
        share = fmt.percent(run.n_errors / run.n_cases) if run.n_cases else "n/a"
        return f"{run.n_errors:,} ({share})"
    if key == "duration":
        return fmt.seconds(run.duration_seconds)
    if ops is None:
        return "unknown"
    if key == "cost":
        return fmt.escape(fmt.money(ops.cost, ops.currency))
    if key in ("prompt_tokens", "completion_tokens"):
        return fmt.count(getattr(ops, key))
    return fmt.seconds(getattr(ops, key))


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _more(hidden: int, what: str) -> list[str]:
    return [f"{hidden:,} more {what} in the JSON report.", ""] if hidden > 0 else []


def _footer(text: str) -> str:
    return f"<sub>{text}</sub>"
