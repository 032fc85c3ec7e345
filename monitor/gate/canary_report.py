"""The canary's reports: a Markdown comment, JSON and JUnit XML of a ``CanaryReport``,
and the comment when it could not watch (exit 3). JUnit shares the gate's XML helpers.
Each shows the candidate's model version (from its registry alias) when it is known, and
the suite's verdicts read during the watch."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from monitor.gate import formatting as fmt
from monitor.gate.canary import CanaryReport, CanaryVerdict, interval_text, level_text
from monitor.gate.junit import _attrs, _text, _timestamp

__all__ = [
    "render_canary_failure_markdown",
    "render_canary_json",
    "render_canary_junit",
    "render_canary_markdown",
]


def render_canary_json(report: CanaryReport) -> str:
    doc = report.model_dump(mode="json")
    doc["exit_code"], doc["summary"] = report.exit_code, report.summary
    return json.dumps(doc, indent=2) + "\n"


def render_canary_markdown(report: CanaryReport) -> str:
    """A pull-request or job-summary comment: the outcome, the figures, the test."""
    last, icon = report.last, "✅" if report.outcome == "promote" else "❌"
    word = "Promote" if report.outcome == "promote" else "Roll back"
    rows = [
        ("production", report.production, last.accuracy("production"), last.n_production),
        ("candidate", report.candidate, last.accuracy("candidate"), last.n_candidate),
    ]
    lines = [
        f"## {icon} Canary: {word} `{report.candidate}`",
        "",
        f"{report.reason}.",
        "",
        "| model | stream | accuracy | labelled records |",
        "|---|---|---:|---:|",
        *(f"| {m} | `{s}` | {fmt.num(a)} | {n} |" for m, s, a, n in rows),
        "",
        f"- difference (candidate - production): {fmt.signed(last.delta)}",
        f"- {level_text(report.alpha)} always-valid interval: {interval_text(last)}",
        f"- always-valid p-value (no difference): {fmt.p_value(last.p_value)}",
        f"- watched {fmt.seconds(last.elapsed)} of {fmt.seconds(report.duration)}"
        f"{', stopped early' if report.early else ''}, {len(report.looks)} looks",
        f"- test: {report.test}; alpha {report.alpha:g}, tau {report.tau:g},"
        f" margin {report.margin:g} (Johari et al., Always Valid Inference, 2022)",
        *_candidate_lines(report),
        "",
        *_verdict_lines(report),
    ]
    return "\n".join(lines)


def _candidate_lines(report: CanaryReport) -> list[str]:
    if report.model is None:
        return []
    version = "unknown" if report.model_version is None else f"`{report.model_version}`"
    return [f"- candidate model `{report.model}`, version {version}"]


def _verdict_lines(report: CanaryReport) -> list[str]:
    if report.suite is None:
        return []
    title = f"### Verdicts of suite `{report.suite}` on `{report.model}` during the watch"
    if not report.verdicts:
        return [title, "", "None judged.", ""]
    return [
        title,
        "",
        "| verdict | run | outcome | review | judged at |",
        "|---:|---:|---|---|---|",
        *(_verdict_row(v, report.rolled_back_by) for v in report.verdicts),
        "",
    ]


def _verdict_row(verdict: CanaryVerdict, rolled_back_by: int | None) -> str:
    mark = " ❌" if verdict.id == rolled_back_by else ""
    review = verdict.review or "-"
    at = verdict.created_at.isoformat(timespec="seconds")
    return f"| {verdict.id}{mark} | {verdict.run_id} | {verdict.outcome} | {review} | {at} |"


def render_canary_junit(report: CanaryReport) -> str:
    """A ``testcase`` ``accuracy`` in ``testsuite`` ``canary.CANDIDATE`` (a failure when
    the test rolled back) and, with a suite, ``verdicts`` (a failure when a regressed
    verdict rolled back)."""
    classname, last = f"canary.{report.candidate}", report.last
    failed = report.outcome == "rollback"
    cases = {"accuracy": failed and report.rolled_back_by is None}
    if report.suite is not None:
        cases["verdicts"] = report.rolled_back_by is not None
    counts = {
        "tests": str(len(cases)),
        "failures": str(sum(cases.values())),
        "errors": "0",
        "time": f"{last.elapsed:.3f}",
    }
    root = ET.Element("testsuites", _attrs({"name": "monitor canary", **counts}))
    suite = ET.SubElement(
        root,
        "testsuite",
        _attrs(
            {
                "name": classname,
                **counts,
                "skipped": "0",
                "timestamp": _timestamp(report.started_at),
            }
        ),
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("outcome", report.outcome),
        ("production", report.production),
        ("candidate", report.candidate),
        ("exit_code", str(report.exit_code)),
        ("alpha", f"{report.alpha:g}"),
        *(() if report.model is None else (("model", report.model),)),
        *(() if report.model_version is None else (("model_version", report.model_version),)),
        *(() if report.suite is None else (("suite", report.suite),)),
    ):
        ET.SubElement(properties, "property", _attrs({"name": name, "value": value}))
    for name, case_failed in cases.items():
        case = ET.SubElement(
            suite, "testcase", _attrs({"classname": classname, "name": name, "time": "0"})
        )
        if case_failed:
            failure = ET.SubElement(
                case, "failure", _attrs({"message": report.reason, "type": "rollback"})
            )
            failure.text = _text(report.summary)
    ET.SubElement(suite, "system-out").text = _text(report.summary)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def render_canary_failure_markdown(production: str, candidate: str, message: str) -> str:
    """The comment when the canary could not decide (exit 3): never a roll-back."""
    return (
        f"## ⚠️ Canary: `{candidate}` against `{production}` could not be watched\n\n"
        f"{message}\n\nThis is an infrastructure problem, not a verdict on the candidate.\n"
    )
