"""The gate's pictures: each comparison's change against its tolerance (the Unicode chart of
the Markdown comment and the geometry of the HTML page), the word-level diff of changed
answers, and the HTML page itself.

The chart is checked on verdicts that ``monitor.verdicts.decide.judge`` really reached,
so its picture cannot drift away from the rule it draws; Markdown is read back with
markdown-it-py (an independent parser) with strikethrough enabled, as GitHub and GitLab
render it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import replace

import numpy as np
import pytest
from markdown_it import MarkdownIt

from monitor.gate import formatting as fmt
from monitor.gate import render_html, render_markdown
from monitor.gate.chart import CHART_ROWS, WIDTH, Bar, bar, chart_lines, direction, tolerance
from monitor.gate.html import content_security_policy
from monitor.gate.trend import trends
from monitor.gate.worddiff import CONTEXT, WORD_LIMIT, markdown_diff, word_diff
from monitor.records import CaseChange, MetricValue
from monitor.verdicts.decide import Comparison, MetricVerdict, Policy, judge
from monitor.wire.runs import RunOut
from monitor.wire.verdicts import MetricComparisonOut
from tests.gate import samples
from tests.streams.test_html_report import PAYLOADS, parse

MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def out(v: MetricVerdict) -> MetricComparisonOut:
    """A judged comparison as the report carries it (what the store keeps of it)."""
    t = v.test
    return MetricComparisonOut(
        metric=v.metric,
        slice=v.slice,
        outcome=v.outcome,
        method=t.method,
        n=t.n,
        baseline=t.baseline,
        new=t.new,
        delta=t.delta,
        lower=t.lower,
        upper=t.upper,
        p_value=t.p_value,
        p_adjusted=v.p_adjusted,
        margin=v.margin,
        reason=v.reason,
        cases_needed=v.cases_needed,
        bound=v.bound,
        bound_side=v.bound_side,
        bound_level=1 - t.alpha,
    )


def judged(
    base_pass: int, new_pass: int, n: int, *, swapped: int = 0, lower_is_better: bool = False
) -> Bar:
    """A pass/fail metric judged on ``n`` paired cases: ``base_pass`` pass in the baseline;
    the new run moves the cases it must to get ``new_pass``, and ``swapped`` more each way
    (noise that leaves the rate as it is). With ``lower_is_better`` the scores are
    failures, an error rate, so a higher count is worse."""
    base = np.zeros(n)
    base[:base_pass] = 1.0
    new = base.copy()
    if new_pass < base_pass:
        new[new_pass:base_pass] = 0.0
    else:
        new[base_pass:new_pass] = 1.0
    new[:swapped] = 0.0
    new[n - swapped :] = 1.0
    if lower_is_better:
        base, new = 1 - base, 1 - new
    ids = [f"c{i}" for i in range(n)]
    comparison = Comparison(
        "m", "binary", dict(zip(ids, base, strict=True)), dict(zip(ids, new, strict=True))
    )
    policy = Policy(direction="lower" if lower_is_better else "higher", max_drop=0.05)
    (verdict,) = judge([comparison], {"m": policy})
    return bar(out(verdict))


# The chart's geometry on real verdicts


def test_a_significant_drop_beyond_the_tolerance_sits_left_of_it() -> None:
    b = judged(360, 280, 400)
    assert b.outcome == "regressed" and b.direction == "higher"
    (tol,) = b.tolerance_at
    assert b.delta_at < tol < 0.5
    assert b.tolerance_delta == pytest.approx(-0.05)


def test_an_inconclusive_interval_reaches_across_the_tolerance_and_no_change() -> None:
    b = judged(36, 34, 40)
    assert b.outcome == "inconclusive"
    assert b.straddles()
    assert b.lower_at < b.tolerance_at[0] < 0.5 < b.upper_at


def test_a_pass_stays_clear_of_the_tolerance() -> None:
    b = judged(360, 360, 400, swapped=15)
    assert b.outcome == "pass" and b.lower < 0 < b.upper
    assert not b.straddles() and b.lower_at > b.tolerance_at[0]


def test_an_improvement_sits_right_of_no_change() -> None:
    b = judged(280, 360, 400)
    assert b.outcome == "improved" and b.direction == "higher"
    assert b.delta_at > 0.5 and b.lower_at > 0.5


def test_where_lower_is_better_the_axis_is_flipped_so_worse_stays_left() -> None:
    b = judged(360, 280, 400, lower_is_better=True)  # the error rate rose
    assert b.outcome == "regressed" and b.direction == "lower"
    assert b.delta > 0 and b.delta_at < b.tolerance_at[0] < 0.5
    assert b.tolerance_delta == pytest.approx(0.05)


def test_an_improvement_where_lower_is_better_is_to_the_right_too() -> None:
    b = judged(280, 360, 400, lower_is_better=True)  # the error rate fell
    assert b.outcome == "improved" and b.direction == "lower"
    assert b.delta < 0 and b.delta_at > 0.5 and b.tolerance_at[0] < 0.5


def test_an_inconclusive_rows_tolerance_is_the_drop_that_matters() -> None:
    """With no ``max_drop`` the verdict still asks about a drop of 5 points: that is the
    line the interval straddles, not zero."""
    rng = np.random.default_rng(3)
    base = (rng.random(40) < 0.85).astype(float)
    new = base.copy()
    new[:3] = 0.0
    ids = [f"c{i}" for i in range(40)]
    comparison = Comparison(
        "m", "binary", dict(zip(ids, base, strict=True)), dict(zip(ids, new, strict=True))
    )
    (verdict,) = judge([comparison], {"m": Policy()})
    row = out(verdict)
    assert row.outcome == "inconclusive" and row.margin == 0
    assert tolerance(row) == pytest.approx(0.05)
    assert bar(row).straddles()


def test_a_verdict_without_bounds_draws_the_tolerance_on_both_sides() -> None:
    comparison = samples.comparison("f1", "pass", bound=None, bound_side=None, bound_level=None)
    row = MetricComparisonOut.model_validate(comparison, from_attributes=True)
    assert direction(row) is None
    b = bar(row)
    assert len(b.tolerance_at) == 2 and b.tolerance_at[0] < 0.5 < b.tolerance_at[1]


# The text chart


def chart_block(text: str) -> list[str]:
    """The lines inside the chart's code block."""
    (fence,) = [t for t in MD.parse(text) if t.type == "fence"]
    return fence.content.splitlines()


def test_the_comment_charts_every_shown_row_in_a_code_block() -> None:
    text = render_markdown(samples.regressed())
    rows = chart_block(text)
    header, body = rows[0], rows[1:]
    assert header.startswith("worse") and "better" in header
    # Overall rows and the flagged slices, as in the table; passing slices fold away.
    assert [r.split("  ")[-1] for r in body] == [
        "exact-match",
        "f1-score",
        "exact-match [topic=history]",
        "f1-score [topic=history]",
    ]
    assert {len(r[:WIDTH]) for r in body} == {WIDTH}
    inconclusive = body[3]
    assert "inconclusive" in inconclusive and "╋" in inconclusive and "┼" in inconclusive
    regressed = body[2]
    assert regressed.index("●") < regressed.index("┃") < regressed.index("│")


def test_chart_rows_are_capped() -> None:
    rows = [
        MetricComparisonOut.model_validate(
            samples.comparison(f"m{i}", "pass"), from_attributes=True
        )
        for i in range(CHART_ROWS + 4)
    ]
    lines = chart_lines(rows)
    assert "4 more rows in the table above." in lines
    assert len([line for line in lines if "pass" in line and "●" in line]) == CHART_ROWS


def test_a_label_cannot_close_the_code_block() -> None:
    hostile = samples.comparison("m", "inconclusive", slice="q=```\n# heading <b>x</b>")
    row = MetricComparisonOut.model_validate(hostile, from_attributes=True)
    text = "\n".join(chart_lines([row]))
    tokens = MD.parse(text)
    assert [t.type for t in tokens if t.type in ("fence", "heading_open", "html_block")] == [
        "fence"
    ]
    (fence,) = [t for t in tokens if t.type == "fence"]
    assert "q=``` # heading <b>x</b>" in fence.content


# The word-level diff


def test_the_diff_rebuilds_both_answers() -> None:
    old = "The wall fell in November 1989 after weeks of protests"
    new = "The Berlin wall fell in 1989 after months of protests"
    pieces = word_diff(old, new)
    kinds = {p.kind for p in pieces}
    assert kinds == {"same", "removed", "added"}
    was = " ".join(p.text for p in pieces if p.kind in ("same", "removed"))
    now = " ".join(p.text for p in pieces if p.kind in ("same", "added"))
    assert was == old and now == new
    assert [p.text for p in pieces if p.kind == "removed"] == ["November", "weeks"]


def test_long_unchanged_stretches_shrink_to_their_context() -> None:
    same = " ".join(f"w{i}" for i in range(50))
    pieces = word_diff(f"{same} old {same}", f"{same} new {same}")
    assert [p.kind for p in pieces] == ["gap", "same", "removed", "added", "same", "gap"]
    assert pieces[1].text.split() == same.split()[-CONTEXT:]
    assert pieces[4].text.split() == same.split()[:CONTEXT]


def test_the_diff_is_bounded() -> None:
    rng = np.random.default_rng(0)
    old = " ".join(rng.choice(["a", "b", "c"], 600))
    new = " ".join(rng.choice(["a", "b", "d"], 600))
    pieces = word_diff(old, new)
    assert sum(len(p.text.split()) for p in pieces) <= WORD_LIMIT
    assert pieces[-1].kind == "gap"
    assert len(markdown_diff(old, new)) < 4 * WORD_LIMIT


@pytest.mark.parametrize("payload", PAYLOADS[:6])
def test_answers_cannot_inject_markup_into_the_diff(payload: str) -> None:
    html = MD.renderInline(markdown_diff(f"ok {payload} **x** ~~y~~", "ok fine"))
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "<svg" not in html.lower()
    # One mark each, the diff's own; the answer's asterisks and tildes stay text.
    assert html.count("<s>") == 1 and html.count("<strong>") == 1
    assert "**x** ~~y~~</s>" in html


def test_the_comment_shows_removed_and_added_words() -> None:
    text = render_markdown(samples.regressed())
    html = MD.render(text)
    assert "Word-level diff" in text
    # q-0017: "Ernest Hemingway" -> "It was written by ... Ernest Miller Hemingway in 1951."
    assert "<strong>It was written by the American author</strong> Ernest" in html
    assert "<strong>Miller</strong>" in html
    assert "<s>Ag</s> <strong>Au</strong>" in html  # the improved case


def test_answers_that_are_not_text_or_did_not_change_wording_get_no_diff() -> None:
    change = replace(samples.CHANGES[0], baseline_prediction=["a"], new_prediction=["b"])
    same = replace(samples.CHANGES[1], baseline_prediction="x  y", new_prediction="x y")
    v = samples.verdict("regressed", (samples.EXACT_REGRESSED,), changes=(change, same))
    assert "Word-level diff" not in render_markdown(samples.report(v))


# The HTML page


def history() -> list[RunOut]:
    """Six earlier runs of the suite x model, the baseline (12) among them, then 42."""
    runs = []
    for i, run_id in enumerate((8, 10, 12, 20, 30, 42)):
        value = 0.82 - 0.01 * i
        run = replace(
            samples.run(run_id),
            metrics=(
                MetricValue("exact-match", value, value - 0.03, value + 0.03, 497),
                MetricValue("f1-score", value + 0.05, None, None, 497),
            ),
        )
        runs.append(RunOut.of(run))
    return runs


def svgs(page: str, cls: str) -> list[dict[str, str | None]]:
    return [dict(a) for tag, a in parse(page).tags if tag == "svg" and dict(a).get("class") == cls]


def test_the_page_draws_a_chart_per_comparison_and_a_trend_per_metric() -> None:
    report = samples.regressed()
    page = render_html(report, history())
    charts = svgs(page, "change-chart")
    assert [c["data-outcome"] for c in charts] == [
        "regressed",
        "pass",
        "regressed",
        "inconclusive",
    ]
    trends = svgs(page, "trend")
    assert [(t["data-metric"], t["data-points"]) for t in trends] == [
        ("exact-match", "6"),
        ("f1-score", "6"),
    ]
    tags = [tag for tag, _ in parse(page).tags]
    assert tags.count("polyline") == 2 and tags.count("polygon") == 1  # one metric has intervals
    text = "".join(parse(page).text)
    assert "baseline run 12" in text and "this run, 42" in text


def test_the_page_has_no_script_and_its_policy_allows_only_its_style() -> None:
    page = render_html(samples.regressed(), history())
    (style,) = re.findall(r"<style>(.*?)</style>", page, flags=re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in content_security_policy()
    assert "default-src 'none'" in content_security_policy()
    metas = [dict(a) for tag, a in parse(page).tags if tag == "meta"]
    assert {"http-equiv": "Content-Security-Policy", "content": content_security_policy()} in metas
    assert "<script" not in page.lower()


def test_hostile_answers_stay_text_on_the_page() -> None:
    changes = tuple(
        CaseChange(
            case_id=f"c{i}",
            change="degraded",
            metric="exact-match",
            baseline_score=1.0,
            new_score=0.0,
            input=payload,
            expected=payload,
            baseline_prediction=f"fine {payload}",
            new_prediction=f"bad {payload} more",
        )
        for i, payload in enumerate(PAYLOADS)
    )
    v = samples.verdict("regressed", (samples.EXACT_REGRESSED,), changes=changes)
    page = render_html(samples.report(v), history())
    parsed = parse(page)
    allowed = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p"}
    allowed |= {"span", "table", "tr", "th", "td", "svg", "line", "circle", "rect", "text"}
    allowed |= {"polyline", "polygon", "del", "ins"}
    assert {tag for tag, _ in parsed.tags} <= allowed
    assert not any(name.startswith("on") for _, attrs in parsed.tags for name, _ in attrs)
    text = "".join(parsed.text)
    assert sum(p in text for p in PAYLOADS) >= len(PAYLOADS) - 2
    # "fine" -> "bad" and the added "more": two insertions a case, as text around them.
    assert [tag for tag, _ in parsed.tags].count("ins") == 2 * len(PAYLOADS)


def test_a_run_alone_still_gets_its_page() -> None:
    page = render_html(samples.inconclusive())
    trends = svgs(page, "trend")
    # The run and its baseline are always there, even with no history.
    assert [t["data-points"] for t in trends] == ["2"]


def test_numbers_that_are_not_finite_still_draw() -> None:
    comparison = samples.comparison(
        "m", "pass", delta=float("nan"), lower=float("-inf"), upper=float("nan")
    )
    row = MetricComparisonOut.model_validate(comparison, from_attributes=True)
    b = bar(row)
    assert (b.delta_at, b.lower_at) == (0.5, 0.0)
    (line,) = chart_lines([row])[4:-2]
    assert "n/a  [n/a, n/a]" in line


def test_no_tolerance_reads_plus_zero() -> None:
    comparison = samples.comparison("m", "regressed", margin=0.0, reason="dropped")
    b = bar(MetricComparisonOut.model_validate(comparison, from_attributes=True))
    assert b.tolerance_at == (0.5,)
    assert fmt.signed(b.tolerance_delta) == "+0"


def test_runs_on_another_dataset_are_marked_in_the_trend() -> None:
    runs = history()
    runs[0] = runs[0].model_copy(update={"dataset_sha256": samples.OTHER_DATASET})
    (first, *rest) = trends(runs, baseline_run=12, current_run=42)[0].points
    assert not first.same_dataset and all(p.same_dataset for p in rest)
    page = render_html(samples.regressed(), runs)
    circles = [dict(a) for tag, a in parse(page).tags if tag == "circle"]
    assert sum(c.get("class") == "point other-dataset" for c in circles) == 2  # both metrics
    assert "run 8: 0.82 [0.79, 0.85], on another dataset" in "".join(parse(page).text)


def test_trend_points_follow_the_runs_in_order_higher_values_higher_up() -> None:
    runs = history()
    # A run without f1-score leaves f1-score a point short, not the x axis.
    runs[2] = runs[2].model_copy(update={"metrics": runs[2].metrics[:1]})
    exact, f1 = trends(list(reversed(runs)), baseline_run=12, current_run=42)
    assert [p.run_id for p in exact.points] == [8, 10, 12, 20, 30, 42]
    assert [p.run_id for p in f1.points] == [8, 10, 20, 30, 42]
    xs = [p.x for p in exact.points]
    assert xs == sorted(xs) and [p.x for p in f1.points] == xs[:2] + xs[3:]
    ys = [p.y for p in exact.points]  # values fall run by run: y grows downwards
    assert ys == sorted(ys)
    assert exact.band and not f1.band  # only exact-match carries intervals
    assert exact.baseline is not None and exact.baseline.run_id == 12
    assert f1.baseline is None and f1.current is not None
