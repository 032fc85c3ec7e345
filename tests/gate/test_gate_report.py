"""The gate's report: exit codes, Markdown and JUnit snapshots, escaping, JSON round trip.

Markdown is read back with markdown-it-py's GFM table rule (an independent parser): a
table that an input broke would lose cells or rows, and the comparison would fail.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from monitor.gate import (
    GateReport,
    render_failure_markdown,
    render_json,
    render_junit,
    render_markdown,
)
from monitor.gate.markdown import CHANGE_ROWS
from monitor.records import CaseChange, RunStatus
from monitor.wire.runs import RunOut
from tests.gate import samples
from tests.gate.conftest import check_snapshot

VERSION = "0.0.0+test"
MD = MarkdownIt("commonmark").enable("table")
Snapshot = Callable[[str, str], None]


def tables(text: str) -> list[list[list[str]]]:
    """Every table of ``text`` as rows of cells, each cell as the text a reader sees."""
    found: list[list[list[str]]] = []
    row: list[str] | None = None
    for token in MD.parse(text):
        if token.type == "table_open":
            found.append([])
        elif token.type == "tr_open":
            row = []
        elif token.type == "inline" and row is not None:
            row.append(_shown(token))
        elif token.type == "tr_close" and row is not None:
            found[-1].append(row)
            row = None
    return found


def _shown(token: Token) -> str:
    rendered = MD.renderer.renderInline(token.children or [], MD.options, {})
    rendered = re.sub(r"</?(strong|em|code|s)>", "", rendered.replace("<br>", "\n"))
    return html.unescape(rendered)


def headings(text: str) -> list[str]:
    tokens = MD.parse(text)
    return [tokens[i + 1].content for i, token in enumerate(tokens) if token.type == "heading_open"]


def _table_with(text: str, header: str) -> list[list[str]]:
    return next(t for t in tables(text) if t[0][0] == header)


# Exit codes and the summary


@pytest.mark.parametrize(
    ("name", "exit_code"),
    [
        ("regressed", 1),
        ("pass", 0),
        ("inconclusive", 0),
        ("improved", 0),
        ("dataset_changed", 0),
        ("unknown_cost", 0),
        ("judged", 0),
    ],
    ids=str,
)
def test_exit_code_follows_the_outcome(name: str, exit_code: int) -> None:
    assert samples.SAMPLES[name]().exit_code == exit_code


def test_summary_names_what_regressed() -> None:
    assert samples.regressed().summary == (
        "Regressed: qa-suite on model-x vs baseline run 12. 2 of 6 comparisons regressed:"
        " exact-match, exact-match [topic=history]."
    )


def test_inconclusive_says_how_many_cases_would_tell() -> None:
    report = samples.inconclusive()
    assert report.summary.startswith("Inconclusive: qa-suite on model-x vs baseline run 12.")
    assert "About 310 paired cases would tell (accuracy has 40)." in report.summary
    assert "About 310 paired cases would tell" in render_markdown(report, version=VERSION)


def test_candidate_judged_against_another_models_baseline_names_it() -> None:
    base = samples.run(12, model="model-prod")
    report = GateReport.build(samples.verdict("pass", ()), samples.run(42), base)
    assert report.summary.startswith("Pass: qa-suite on model-x vs baseline run 12 of model-prod.")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"run_id": 41}, "it judges run 41, not run 42"),
        ({"baseline_run_id": 11}, "its baseline is run 11, not run 12"),
        ({"model": "model-y"}, "it is about qa-suite on model-y, run 42 about qa-suite on model-x"),
        ({"outcome": "worse"}, "unknown outcome 'worse', expected one of improved, inconclusive"),
    ],
    ids=["run", "baseline", "model", "outcome"],
)
def test_build_refuses_parts_that_do_not_belong_together(
    change: dict[str, Any], message: str
) -> None:
    verdict = replace(samples.verdict("pass", ()), **change)
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        GateReport.build(verdict, samples.run(42), samples.run(12))
    assert str(caught.value).startswith("verdict 7: ")


# Snapshots


@pytest.mark.parametrize("name", sorted(samples.SAMPLES))
def test_markdown_snapshot(name: str, snapshot: Snapshot) -> None:
    snapshot(f"{name}.md", render_markdown(samples.SAMPLES[name](), version=VERSION))


@pytest.mark.parametrize("name", sorted(samples.SAMPLES))
def test_junit_snapshot(name: str, snapshot: Snapshot) -> None:
    snapshot(f"{name}.xml", render_junit(samples.SAMPLES[name]()))


def test_snapshot_check_fails_on_a_difference() -> None:
    text = render_markdown(samples.passed(), version=VERSION)
    with pytest.raises(pytest.fail.Exception, match="differs from its snapshot"):
        check_snapshot("pass.md", text.replace("Pass", "Fail"), update=False)
    with pytest.raises(pytest.fail.Exception, match="no snapshot"):
        check_snapshot("no-such-sample.md", text, update=False)


def failed_run() -> RunOut:
    run = samples.run(
        42,
        status=RunStatus.FAILED,
        n_errors=480,
        error="error budget exceeded: 480 of 500 cases failed (connection)",
    )
    return RunOut.of(run)


def test_failure_markdown_snapshot(snapshot: Snapshot) -> None:
    reason = "run 42 failed: error budget exceeded: 480 of 500 cases failed (connection)"
    text = render_failure_markdown("qa-suite", "model-x", failed_run(), reason, version=VERSION)
    snapshot("failure.md", text)
    reason = "POST http://127.0.0.1:9/v1/runs: cannot connect"
    no_run = render_failure_markdown("qa-suite", "model-x", None, reason, version=VERSION)
    snapshot("failure-unreachable.md", no_run)


def test_failure_markdown_never_says_regressed() -> None:
    text = render_failure_markdown("qa", "m", failed_run(), "endpoint | down\n502", version=VERSION)
    assert "**Infrastructure error**" in text
    assert "regress" not in text.lower()
    assert "endpoint \\| down<br>502" in text


# Markdown structure


@pytest.mark.parametrize("name", sorted(samples.SAMPLES))
def test_markdown_tables_keep_their_shape(name: str) -> None:
    """Every row has its header's cells, and the text is emoji-free (all ASCII here, but
    for the chart's box-drawing characters and its legend)."""
    text = render_markdown(samples.SAMPLES[name](), version=VERSION)
    outside_chart = re.sub(r"^Each row: [^\n]*$|^```$.*?^```$", "", text, flags=re.S | re.M)
    assert outside_chart.isascii()
    assert "Each row: " not in outside_chart and "│" not in outside_chart
    found = tables(text)
    assert found
    for table in found:
        assert {len(row) for row in table} == {len(table[0])}
    assert text.splitlines()[0] == "<!-- monitor-gate -->"


def test_markdown_verdict_line_and_footer() -> None:
    text = render_markdown(samples.regressed(), version=VERSION)
    assert "**Regressed**: qa-suite on model-x vs baseline run 12." in text
    assert text.rstrip().endswith(
        "<sub>monitor 0.0.0+test; verdict 7 of 2026-03-02 09:31:20 UTC</sub>"
    )


def test_overall_rows_first_then_flagged_slices_and_passing_slices_folded() -> None:
    text = render_markdown(samples.regressed(), version=VERSION)
    main, folded = [t for t in tables(text) if t[0][0] == "Metric"]
    assert [(r[0], r[1], r[-1]) for r in main[1:]] == [
        ("exact-match", "(all)", "regressed"),
        ("f1-score", "(all)", "pass"),
        ("exact-match", "topic=history", "regressed"),
        ("f1-score", "topic=history", "inconclusive"),
    ]
    assert [r[1] for r in folded[1:]] == ["topic=science", "topic=science"]
    assert "<summary>2 slice comparisons passed</summary>" in text
    assert main[1][2:8] == [
        "497",
        "0.812",
        "0.764",
        "-0.0483",
        "at most -0.0278 (95%)",  # the one-sided bound of the test behind p
        "0.0003",
    ]


def test_reasons_of_flagged_rows() -> None:
    text = render_markdown(samples.regressed(), version=VERSION)
    why = text.split("#### Why\n\n")[1].split("\n\n")[0].splitlines()
    assert why == [
        "- regressed, exact-match: dropped 0.0483 (p=0.00033), beyond 0.02"
        " (31 cases pass to fail, 7 fail to pass)",
        "- regressed, exact-match \\[topic=history\\]: dropped 0.2333 (p=8.4e-07),"
        " beyond 0.02 (30 cases pass to fail, 2 fail to pass)",
        "- inconclusive, f1-score \\[topic=history\\]: a drop of 0.04356 is not ruled out"
        " with 120 cases; about 412 would tell",
    ]


def test_cases_show_both_predictions() -> None:
    text = render_markdown(samples.regressed(), version=VERSION)
    degraded = _table_with(text.split("#### Degraded cases (2)")[1], "Case")
    assert degraded[2] == [
        "q-0203",
        "f1-score",
        "0.8571 -> 0.2",
        "In which year did the Berlin Wall fall?",
        "1989",
        "1989",
        "The wall fell in November,\nafter weeks of protests.",
    ]
    improved = _table_with(text.split("#### Improved cases (1)")[1], "Case")
    assert improved[1][:3] == ["q-0311", "exact-match", "0 -> 1"]


def test_unknown_tokens_and_cost_say_unknown_never_zero() -> None:
    text = render_markdown(samples.unknown_cost(), version=VERSION)
    ops = {row[0]: row[1:] for row in _table_with(text, "")}
    assert ops["Cost"] == ["unknown", "unknown"]
    assert ops["Prompt tokens"] == ["unknown", "unknown"]
    assert ops["Completion tokens"] == ["unknown", "unknown"]
    assert ops["Latency p95"] == ["unknown", "1.23 s"]
    assert "0.0000" not in text


def test_judges_are_reported_apart_with_their_prompts_agreement_and_cost() -> None:
    text = render_markdown(samples.judged(), version=VERSION)
    (judges,) = [t for t in tables(text) if t[0][:3] == ["Metric", "Judge", "Prompt"]]
    header, *rows = judges
    by_metric = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert set(by_metric) == {"faithfulness", "rubric:tone", "pairwise"}
    faith, tone, pairwise = (
        by_metric["faithfulness"],
        by_metric["rubric:tone"],
        by_metric["pairwise"],
    )
    assert faith["Prompt"] == samples.PROMPT[:12]
    assert (faith["Judge errors"], faith["Cost"], faith["Baseline cost"]) == (
        "3",
        "0.0522 USD",
        "0.0525 USD",
    )
    assert tone["Prompt"].startswith(samples.NEW_PROMPT[:12])
    assert "changed" in tone["Prompt"] and samples.PROMPT[:12] in tone["Prompt"]
    assert tone["Agreement"] == "97.3%" and faith["Agreement"] == "n/a"
    assert "not in the baseline" in pairwise["Prompt"]
    assert pairwise["Cost"] == "unknown"  # never 0
    # The model's own cost stays the model's: the judges' is not added to it.
    (costs,) = [t for t in tables(text) if t[0][0] == "" and len(t[0]) == 3]
    assert ["Cost", "0.4031 USD", "0.4125 USD"] in costs


def test_costs_and_latency_of_both_runs() -> None:
    ops = {row[0]: row[1:] for row in _table_with(render_markdown(samples.passed()), "")}
    assert ops[""] == ["Baseline (run 12)", "This run (run 42)"]
    assert ops["Cost"] == ["0.4031 USD", "0.4125 USD"]
    assert ops["Prompt tokens"] == ["182,340", "182,340"]
    assert ops["Latency p50"] == ["398 ms", "412 ms"]
    assert ops["Latency p99"] == ["1.90 s", "2.50 s"]
    assert ops["Errors"] == ["0 (0.0%)", "3 (0.6%)"]


def test_dataset_change_warning_only_when_the_dataset_changed() -> None:
    changed = render_markdown(samples.dataset_changed(), version=VERSION)
    assert (
        "**Warning**: the dataset changed since the baseline (baseline `3f9a1c0d7e5b`,"
        " this run `9b27e4c1aa0f`)."
    ) in changed
    assert "Warning" not in render_markdown(samples.passed(), version=VERSION)
    assert "dataset `3f9a1c0d7e5b`" in render_markdown(samples.passed(), version=VERSION)


# Escaping

HOSTILE = "a|b \\| c\nx\r\ny\tz `t` *s* _e_ [l](u) <details> $m$ ~~d~~ &amp; #h"
LONG = "word | " * 40 + "end"


def hostile_report(*changes: CaseChange) -> GateReport:
    v = samples.verdict("regressed", (samples.EXACT_REGRESSED,), changes=changes)
    return samples.report(v)


def shown(value: str) -> str:
    """What a reader should see for ``value`` in a cell: its first 80 characters."""
    text = value if len(value) <= 80 else value[:77] + "..."
    return re.sub(r"\r\n|\r", "\n", text).replace("\t", " ")


def test_pipes_newlines_and_markup_cannot_break_a_table() -> None:
    change = CaseChange(
        case_id="id|1</details>",
        change="degraded",
        metric="exact-match",
        baseline_score=1.0,
        new_score=0.0,
        input=HOSTILE,
        expected={"answer": "x|y"},
        baseline_prediction="line one\nline two",
        new_prediction=LONG,
    )
    text = render_markdown(hostile_report(change), version=VERSION)
    rows = _table_with(text.split("#### Degraded cases (1)")[1], "Case")
    assert len(HOSTILE) <= 80
    assert rows[1] == [
        "id|1</details>",
        "exact-match",
        "1 -> 0",
        shown(HOSTILE),
        '{"answer": "x|y"}',
        "line one\nline two",
        shown(LONG),
    ]
    assert rows[1][-1].endswith("...") and len(rows[1][-1]) == 80
    assert text.count("<details>") == 0
    # The rest of the comment survives intact after the hostile table.
    assert headings(text) == [
        "monitor gate",
        "Metrics",
        "Why",
        "Degraded cases (1)",
        "Cost and latency",
    ]


def test_structured_values_render_as_json() -> None:
    change = replace(samples.CHANGES[0], input={"q": ["a", 1, None]}, expected=None)
    text = render_markdown(hostile_report(change), version=VERSION)
    row = _table_with(text.split("#### Degraded cases (1)")[1], "Case")[1]
    assert row[3:5] == ['{"q": ["a", 1, null]}', ""]


def test_long_case_lists_are_capped_with_a_pointer_to_the_json() -> None:
    many = [replace(samples.CHANGES[0], case_id=f"q-{i:04d}") for i in range(CHANGE_ROWS + 5)]
    text = render_markdown(hostile_report(*many), version=VERSION)
    rows = _table_with(text.split("#### Degraded cases (25)")[1], "Case")
    assert len(rows) == 1 + CHANGE_ROWS
    assert "5 more cases in the JSON report." in text


# JSON


@pytest.mark.parametrize("name", sorted(samples.SAMPLES))
def test_json_round_trip(name: str) -> None:
    report = samples.SAMPLES[name]()
    assert GateReport.model_validate_json(render_json(report)) == report


# JUnit


@pytest.mark.parametrize("name", sorted(samples.SAMPLES))
def test_junit_structure(name: str) -> None:
    report = samples.SAMPLES[name]()
    root = ET.fromstring(render_junit(report))
    assert root.tag == "testsuites"
    [suite] = root.findall("testsuite")
    assert suite.get("name") == "qa-suite.model-x"
    tags = [child.tag for child in suite]
    assert (tags[0], tags[-1]) == ("properties", "system-out")
    cases = suite.findall("testcase")
    metrics = report.verdict.metrics
    assert len(cases) == len(metrics) == int(suite.get("tests", "-1"))
    regressed = [m for m in metrics if m.outcome == "regressed"]
    inconclusive = [m for m in metrics if m.outcome == "inconclusive"]
    assert int(suite.get("failures", "-1")) == len(regressed)
    assert int(suite.get("skipped", "-1")) == len(inconclusive)
    assert suite.get("errors") == "0"
    assert root.get("tests") == suite.get("tests")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", suite.get("timestamp", ""))
    for case, m in zip(cases, metrics, strict=True):
        assert case.get("classname") == "qa-suite.model-x"
        assert case.get("name") == (f"{m.metric}[{m.slice}]" if m.slice else m.metric)
        kinds = [child.tag for child in case]
        expected = {"regressed": ["failure"], "inconclusive": ["skipped"]}.get(m.outcome, [])
        assert kinds == [*expected, "system-out"]
        out = case.findtext("system-out", "")
        assert f"delta: {m.delta:+.4g}" in out and f"cases: {m.n}" in out
        if m.outcome != "pass" and m.outcome != "improved":
            assert case[0].get("message") == m.reason


def test_junit_failure_lists_degraded_cases() -> None:
    root = ET.fromstring(render_junit(samples.regressed()))
    failure = root.find("testsuite/testcase[@name='exact-match']/failure")
    assert failure is not None and failure.get("type") == "regressed"
    assert (failure.text or "").splitlines() == [
        "dropped 0.0483 (p=0.00033), beyond 0.02",
        "Degraded cases:",
        "  q-0017: 1 -> 0",
        "    input: "
        """{"question": "Who wrote 'The Old Man and the Sea'?", "context": "Hemingway..."}""",
        '    expected: ["Ernest Hemingway", "Hemingway"]',
        "    baseline prediction: Ernest Hemingway",
        "    new prediction: It was written by the American author Ernest Miller Hemingway"
        " in 1951.",
    ]


def test_junit_survives_characters_xml_cannot_carry() -> None:
    change = replace(samples.CHANGES[0], new_prediction="bell\x07 nul\x00 esc\x1b <&> ]]>")
    metric = replace(samples.EXACT_REGRESSED, reason='dropped\x0c 0.05 <fast> & "far"')
    report = samples.report(samples.verdict("regressed", (metric,), changes=(change,)))
    root = ET.fromstring(render_junit(report))
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("message") == 'dropped\ufffd 0.05 <fast> & "far"'
    assert "new prediction: bell\ufffd nul\ufffd esc\ufffd <&> ]]>" in (failure.text or "")


def test_junit_shows_a_regressed_verdict_without_a_regressed_row_as_a_failure() -> None:
    v = samples.verdict("regressed", (samples.comparison("f1", "pass"),), reason="p99 doubled")
    root = ET.fromstring(render_junit(samples.report(v)))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("failures") == "1" and suite.get("tests") == "2"
    failure = suite.find("testcase[@name='verdict']/failure")
    assert failure is not None and failure.get("message") == "p99 doubled"


def test_an_outcome_this_version_does_not_know_still_renders() -> None:
    report = samples.passed()
    newer = report.model_copy(
        update={"verdict": report.verdict.model_copy(update={"outcome": "flaky"})}
    )
    assert "**Flaky**: qa-suite on model-x vs baseline run 12." in render_markdown(newer)
    assert ET.fromstring(render_junit(newer)).find("testsuite") is not None
