"""Each metric's change against its tolerance, as a picture: a Unicode chart for a
pull-request comment and the geometry the HTML report draws as SVG.

A row shows the change of one metric (new - baseline) as a dot, its 95% interval as a
bar, "no change" as a thin line in the middle and the tolerance as a heavy line on the
worse side, so the outcome reads at a glance: a dot beyond the heavy line with its bar
clear of "no change" regressed; a bar across both lines is inconclusive (a drop that
matters is neither shown nor ruled out); a bar that stays right of the heavy line passes.
Worse is always to the left: the axis is flipped for a metric where lower is better.
Each row has its own scale, symmetric about "no change", since metrics differ in range (a
pass rate against BLEU); the numbers next to the bar give the scale.

The tolerance is the drop the verdict allows (``margin``: ``max_drop``); an inconclusive
row's is the smallest drop that matters, which its interval still reaches (the verdict's
reason carries it). Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from monitor.gate import formatting as fmt
from monitor.gate.summary import label
from monitor.wire.verdicts import MetricComparisonOut

__all__ = ["CHART_ROWS", "WIDTH", "Bar", "bar", "chart_lines"]

# Cells of the text chart; odd, so "no change" sits in the middle cell.
WIDTH = 41
CHART_ROWS = 30
# Room to the ends of a row's scale, so the widest mark does not sit on the edge.
_PAD = 1.1
# The reason monitor.verdicts.decide gives an inconclusive comparison.
_EFFECT = re.compile(r"^a drop of ([-+0-9.eE]+) is not ruled out")
_LABEL = 60
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Direction = Literal["higher", "lower"]


@dataclass(frozen=True, slots=True)
class Bar:
    """One comparison placed on its own axis. Positions are fractions of the width, worse
    to the left and "no change" at 0.5; ``tolerance_at`` holds one position (or two, at
    both sides, when the metric's direction is unknown: a verdict stored before bounds)."""

    label: str
    outcome: str
    delta: float
    lower: float
    upper: float
    tolerance: float
    direction: Direction | None
    lower_at: float
    upper_at: float
    delta_at: float
    tolerance_at: tuple[float, ...]

    @property
    def tolerance_delta(self) -> float:
        """The tolerance as a change of the metric: ``-0.02`` when higher is better."""
        # ``+ 0.0`` turns a zero tolerance's -0.0 into 0.0, which shows as +0, not -0.
        return (self.tolerance if self.direction == "lower" else -self.tolerance) + 0.0

    def straddles(self) -> bool:
        """Whether the interval reaches across a tolerance line."""
        return any(self.lower_at < at < self.upper_at for at in self.tolerance_at)


def direction(m: MetricComparisonOut) -> Direction | None:
    """Which way is better, read from the side of the one-sided bound: the test of
    "worse" bounds the change from above when higher is better; an improvement's test
    is the other way round. ``None`` for a verdict stored without a bound."""
    if m.bound_side is None:
        return None
    upper_is_worse_test = m.bound_side == "upper"
    return "higher" if upper_is_worse_test != (m.outcome == "improved") else "lower"


def tolerance(m: MetricComparisonOut) -> float:
    """The drop a row is judged against: ``margin``, or for an inconclusive row the
    smallest drop that matters when its reason names it."""
    found = _EFFECT.match(m.reason) if m.outcome == "inconclusive" else None
    effect = _finite(found.group(1)) if found else None
    return max(m.margin, effect) if effect is not None else m.margin


def bar(m: MetricComparisonOut) -> Bar:
    """``m`` placed on an axis of its own."""
    way = direction(m)
    sign = -1.0 if way == "lower" else 1.0
    tol = abs(tolerance(m))
    gains = sorted((sign * m.lower, sign * m.upper))
    reach = max(abs(gains[0]), abs(gains[1]), abs(m.delta), tol)
    half = reach * _PAD if reach > 0 and math.isfinite(reach) else 1.0

    def at(gain: float) -> float:
        if math.isnan(gain):
            return 0.5  # not a number: drawn on "no change", the numbers say n/a
        if math.isinf(gain):
            return 0.0 if gain < 0 else 1.0
        return min(max(0.5 + gain / (2 * half), 0.0), 1.0)

    marks = (at(-tol),) if way is not None else (at(-tol), at(tol))
    return Bar(
        label=label(m),
        outcome=m.outcome,
        delta=m.delta,
        lower=m.lower,
        upper=m.upper,
        tolerance=tol,
        direction=way,
        lower_at=at(gains[0]),
        upper_at=at(gains[1]),
        delta_at=at(sign * m.delta),
        tolerance_at=tuple(sorted(set(marks))),
    )


def chart_lines(rows: Sequence[MetricComparisonOut]) -> list[str]:
    """The chart as Markdown lines: a legend and a fenced code block, one row per
    comparison (at most :data:`CHART_ROWS`). A code block keeps the columns aligned in
    GitHub and GitLab alike and is never parsed as markup; labels go last, so a wide
    character in a slice value cannot shift the bars."""
    if not rows:
        return []
    body = [_header(), *(_text_row(bar(m)) for m in rows[:CHART_ROWS])]
    fence = _fence(body)
    lines = [
        "Each row: `●` the change (new - baseline), `├─┤` its 95% interval, `│` no change,"
        " `┃` the tolerance. Worse is to the left (the axis is flipped where lower is"
        " better); each row has its own scale. A bar across both `┃` and `│` is"
        " inconclusive: a drop that matters is neither shown nor ruled out.",
        "",
        fence,
        *body,
        fence,
        "",
    ]
    if len(rows) > CHART_ROWS:
        lines += [f"{len(rows) - CHART_ROWS:,} more rows in the table above.", ""]
    return lines


def _header() -> str:
    half = (WIDTH - 1) // 2
    axis = "worse".ljust(half) + "0" + "better".rjust(half)
    return f"{axis}  {'outcome':<12}  {'change':>8}  {'95% interval':<22}  {'tolerance':>9}  metric"


def _text_row(b: Bar) -> str:
    cells = [" "] * WIDTH

    def cell(at: float) -> int:
        return min(round(at * (WIDTH - 1)), WIDTH - 1)

    lo, hi, mid = cell(b.lower_at), cell(b.upper_at), (WIDTH - 1) // 2
    for i in range(lo, hi + 1):
        cells[i] = "─"
    cells[lo], cells[hi] = ("├", "┤") if hi > lo else ("│", "│")
    cells[mid] = "┼" if lo < mid < hi else "│"
    for at in b.tolerance_at:
        i = cell(at)
        cells[i] = "╋" if lo < i < hi else "┃"
    cells[cell(b.delta_at)] = "●"
    interval = fmt.interval(b.lower, b.upper)
    tol = fmt.signed(b.tolerance_delta) if b.direction else f"±{fmt.num(b.tolerance)}"
    name = _CONTROL.sub(" ", fmt.truncate(b.label, _LABEL))
    return (
        f"{''.join(cells)}  {fmt.truncate(b.outcome, 12):<12}  {fmt.signed(b.delta):>8}"
        f"  {interval:<22}  {tol:>9}  {name}"
    )


def _fence(body: Sequence[str]) -> str:
    """A backtick fence longer than any backtick run in the block, so no label closes it."""
    longest = max((len(run) for line in body for run in re.findall(r"`+", line)), default=0)
    return "`" * max(3, longest + 1)


def _finite(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
