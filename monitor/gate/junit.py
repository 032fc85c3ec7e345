"""The gate's report as JUnit XML, for the test tabs of CI systems.

One ``testsuite`` named ``suite.model``; one ``testcase`` per metric comparison
(classname ``suite.model``, name ``metric`` or ``metric[slice]``): a ``failure`` when it
regressed, ``skipped`` with the reason when inconclusive, the numbers in ``system-out``.
Element order and attributes follow the common (Ant / Jenkins) JUnit schema; characters
XML 1.0 cannot carry are replaced, so any model output makes a well-formed file.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from monitor.gate import formatting as fmt
from monitor.wire.verdicts import CaseChangeOut, MetricComparisonOut, VerdictOut

if TYPE_CHECKING:
    from monitor.gate.report import GateReport

# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_CASES_IN_FAILURE = 10


def render_junit(report: GateReport) -> str:
    """The report as a JUnit XML document."""
    v, run = report.verdict, report.run
    classname = f"{v.suite}.{v.model}"
    cases = [_testcase(classname, m, v.changes) for m in v.metrics]
    if v.outcome == "regressed" and not any(m.outcome == "regressed" for m in v.metrics):
        cases.append(_verdict_testcase(classname, v))  # a regression always shows as a failure
    counts = {
        "tests": str(len(cases)),
        "failures": str(sum(1 for c in cases if c.find("failure") is not None)),
        "errors": "0",
        "skipped": str(sum(1 for c in cases if c.find("skipped") is not None)),
        "time": f"{run.duration_seconds or 0:.3f}",
    }
    # The common schema has no ``skipped`` on ``testsuites``; ``testsuite`` carries it.
    totals = {key: value for key, value in counts.items() if key != "skipped"}
    root = ET.Element("testsuites", _attrs({"name": "monitor gate", **totals}))
    stamp = _timestamp(run.started_at or run.created_at)
    suite = ET.SubElement(
        root, "testsuite", _attrs({"name": classname, **counts, "timestamp": stamp})
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in _properties(report):
        ET.SubElement(properties, "property", _attrs({"name": name, "value": value}))
    suite.extend(cases)
    ET.SubElement(suite, "system-out").text = _text(report.summary)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _testcase(
    classname: str, m: MetricComparisonOut, changes: Sequence[CaseChangeOut]
) -> ET.Element:
    name = f"{m.metric}[{m.slice}]" if m.slice else m.metric
    case = ET.Element("testcase", _attrs({"classname": classname, "name": name, "time": "0"}))
    if m.outcome == "regressed":
        failure = ET.SubElement(case, "failure", _attrs({"message": m.reason, "type": "regressed"}))
        failure.text = _text(_failure_text(m, changes))
    elif m.outcome == "inconclusive":
        ET.SubElement(case, "skipped", _attrs({"message": m.reason}))
    ET.SubElement(case, "system-out").text = _text(_numbers(m))
    return case


def _verdict_testcase(classname: str, v: VerdictOut) -> ET.Element:
    case = ET.Element("testcase", _attrs({"classname": classname, "name": "verdict", "time": "0"}))
    failure = ET.SubElement(case, "failure", _attrs({"message": v.reason, "type": "regressed"}))
    failure.text = _text(v.reason)
    return case


def _failure_text(m: MetricComparisonOut, changes: Sequence[CaseChangeOut]) -> str:
    """The reason, then (for an overall row) the first degraded cases of the metric."""
    lines = [m.reason]
    worse = [c for c in changes if c.metric == m.metric and c.change != "improved"]
    if worse and not m.slice:
        lines.append("Degraded cases:")
        for c in worse[:_CASES_IN_FAILURE]:
            lines += [
                f"  {c.case_id}: {fmt.num(c.baseline_score)} -> {fmt.num(c.new_score)}",
                f"    input: {_short(c.input)}",
                f"    expected: {_short(c.expected)}",
                f"    baseline prediction: {_short(c.baseline_prediction)}",
                f"    new prediction: {_short(c.new_prediction)}",
            ]
    return "\n".join(lines)


def _short(value: object) -> str:
    """One line of at most 80 characters."""
    return fmt.truncate(" ".join(fmt.text_of(value).split()))


def _numbers(m: MetricComparisonOut) -> str:
    pairs = [
        ("outcome", m.outcome),
        ("method", m.method),
        ("cases", str(m.n)),
        ("baseline", fmt.num(m.baseline)),
        ("new", fmt.num(m.new)),
        ("delta", fmt.signed(m.delta)),
        ("95% interval of delta (two-sided)", fmt.interval(m.lower, m.upper)),
        ("p-value (two-sided)", fmt.num(m.p_value)),
        ("one-sided bound of delta", fmt.bound(m.bound, m.bound_side, m.bound_level)),
        ("p-value (one-sided, Holm-adjusted)", fmt.num(m.p_adjusted)),
        ("margin", fmt.num(m.margin)),
        ("reason", m.reason),
    ]
    if m.cases_needed is not None:
        pairs.append(("cases needed", str(m.cases_needed)))
    if m.degraded is not None and m.improved is not None:
        pairs += [("pass to fail", str(m.degraded)), ("fail to pass", str(m.improved))]
    if m.unpaired:
        pairs.append(("unpaired", str(m.unpaired)))
    return "\n".join(f"{key}: {value}" for key, value in pairs)


def _properties(report: GateReport) -> Iterable[tuple[str, str]]:
    v, run, base = report.verdict, report.run, report.baseline
    ops = run.operations
    return [
        ("verdict", v.outcome),
        ("verdict_id", str(v.id)),
        ("run_id", str(run.id)),
        ("baseline_run_id", str(base.id)),
        ("dataset_sha256", run.dataset_sha256),
        ("dataset_changed", str(v.dataset_changed).lower()),
        ("exit_code", str(report.exit_code)),
        *([("tier", run.tier)] if run.tier else []),
        *([("review", v.review)] if v.review else []),
        *([("reviewed_by", v.reviewed_by)] if v.reviewed_by else []),
        ("cost", fmt.money(ops.cost, ops.currency) if ops else "unknown"),
        ("latency_p95", fmt.seconds(ops.latency_p95) if ops else "unknown"),
    ]


def _attrs(values: dict[str, str]) -> dict[str, str]:
    return {key: _text(value) for key, value in values.items()}


def _text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _timestamp(moment: datetime) -> str:
    """The common JUnit schema's timestamp has no zone: the stored time, in UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")
