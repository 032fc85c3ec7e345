"""Each metric's trend over the recent runs of a suite x model, placed for an SVG plot.

A trend is the metric's value in each run, oldest first, with its confidence interval as
a band when the runs carry one; the baseline run and the run being reported are marked,
and so is every run on another dataset than the reported run's (its value is not
comparable one to one).
Geometry only (pixel coordinates in a fixed box): the HTML report's template draws it,
and every number shown comes from the stored runs. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.wire.runs import RunOut

__all__ = ["HEIGHT", "WIDTH", "Point", "Trend", "trends"]

WIDTH, HEIGHT = 640, 150
# The plot area inside the box: room for the value labels on the left and run ids below.
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 10, 24


@dataclass(frozen=True, slots=True)
class Point:
    run_id: int
    value: float
    lower: float | None
    upper: float | None
    x: float
    y: float
    y_lower: float | None
    y_upper: float | None
    same_dataset: bool = True


@dataclass(frozen=True, slots=True)
class Trend:
    """One metric over the runs. ``line`` and ``band`` are SVG ``points`` lists (the band
    empty when no run has an interval); ``low``/``high`` label the value axis."""

    metric: str
    points: tuple[Point, ...]
    low: float
    high: float
    line: str
    band: str
    baseline: Point | None
    current: Point | None


def trends(runs: Sequence[RunOut], *, baseline_run: int, current_run: int) -> list[Trend]:
    """One trend per metric of the runs (in the order the newest run lists them), over
    ``runs`` sorted by id. A run without a metric, or with a value that is not finite,
    leaves a gap in that metric's x positions but no point."""
    ordered = sorted(runs, key=lambda r: r.id)
    names: list[str] = []
    for run in reversed(ordered):
        names += [m.name for m in run.metrics if m.name not in names]
    return [_trend(name, ordered, baseline_run, current_run) for name in names]


def _trend(name: str, runs: Sequence[RunOut], baseline_run: int, current_run: int) -> Trend:
    dataset = next((r.dataset_sha256 for r in runs if r.id == current_run), None)
    values = []
    for i, run in enumerate(runs):
        found = next((m for m in run.metrics if m.name == name), None)
        if found is not None and math.isfinite(found.value):
            same = dataset is None or run.dataset_sha256 == dataset
            lo, hi = _finite(found.lower), _finite(found.upper)
            values.append((i, run.id, found.value, lo, hi, same))
    seen = [v for _, _, value, lo, hi, _ in values for v in (value, lo, hi) if v is not None]
    low, high = (min(seen), max(seen)) if seen else (0.0, 1.0)
    if not high > low:
        low, high = low - 0.5 * (abs(low) or 1.0), high + 0.5 * (abs(high) or 1.0)
    span_x = max(len(runs) - 1, 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def y(value: float) -> float:
        return round(TOP + (high - value) / (high - low) * plot_h, 1)

    points = tuple(
        Point(
            run_id=run_id,
            value=value,
            lower=lo,
            upper=hi,
            x=round(LEFT + (i / span_x if len(runs) > 1 else 0.5) * plot_w, 1),
            y=y(value),
            y_lower=None if lo is None else y(lo),
            y_upper=None if hi is None else y(hi),
            same_dataset=same,
        )
        for i, run_id, value, lo, hi, same in values
    )
    return Trend(
        metric=name,
        points=points,
        low=low,
        high=high,
        line=" ".join(f"{p.x},{p.y}" for p in points),
        band=_band(points),
        baseline=next((p for p in points if p.run_id == baseline_run), None),
        current=next((p for p in points if p.run_id == current_run), None),
    )


def _band(points: Sequence[Point]) -> str:
    """The interval band as a polygon: the upper bounds left to right, the lower back."""
    with_bounds = [p for p in points if p.y_lower is not None and p.y_upper is not None]
    if len(with_bounds) < 2:
        return ""
    top = [f"{p.x},{p.y_upper}" for p in with_bounds]
    bottom = [f"{p.x},{p.y_lower}" for p in reversed(with_bounds)]
    return " ".join(top + bottom)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
