"""``monitor drift``: a one-off comparison of two data sets, printed as a table.

The reference is ``--reference`` or the stream's configured reference; the current data is
``--current`` or, without it, the stream's latest complete window from its own source.
Nothing is stored: this is for looking, in a terminal or a CI log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.config.streams import StreamConfig
from monitor.drift import DriftResult, build_profile, compare
from monitor.streams import sources
from monitor.streams.specs import column_specs, drift_settings

if TYPE_CHECKING:  # the store (and SQLAlchemy) only when the data comes from it
    from monitor.store import Store

__all__ = ["compare_files", "dumps", "format_table", "to_json"]


def compare_files(
    stream: StreamConfig,
    *,
    reference: Path | None,
    current: Path | None,
    store: Store | None,
    html: Path | None = None,
) -> DriftResult:
    """Compare ``current`` (or the latest window) with ``reference`` (or the stream's)."""
    if current is None:
        from monitor.streams.evaluate import StreamEvaluator

        if store is None:
            raise ValueError("without --current the stream's store is needed")
        evaluator = StreamEvaluator(stream, store)
        try:
            window = evaluator.latest_window()
            if window is None:
                raise ValueError(f"stream {stream.name!r} has no complete window yet")
            return evaluator.preview(window)
        finally:
            evaluator.close()
    # the monitored columns only, and for a report only: the tables are dropped as soon as
    # they are arrays, so the peak stays near one copy of the data
    names = [name for name, _ in stream.drift_columns()]
    ref_file = reference or stream.reference.file
    if ref_file:
        ref_table = sources.read_file(ref_file, names)
    else:
        from monitor.streams.evaluate import load_reference

        ref_table = load_reference(stream, store)
    ref_origin = str(ref_file or "the stream's reference")
    ref_columns = sources.to_columns(ref_table, stream, ref_origin)
    if html is None:
        del ref_table
    profile = build_profile(ref_columns, column_specs(stream), drift_settings(stream))
    del ref_columns
    cur_table = sources.read_file(current, names)
    cur_columns = sources.to_columns(cur_table, stream, str(current))
    if html is None:
        del cur_table
    result = compare(profile, cur_columns)
    if html is not None:
        from monitor.streams.html import render_report

        html.write_text(render_report(stream, result, ref_table, cur_table), encoding="utf-8")
    return result


def to_json(stream: StreamConfig, result: DriftResult) -> dict[str, Any]:
    """The result as the JSON the API uses for a report's body."""
    from monitor.streams.evaluate import result_columns

    return {
        "stream": stream.name,
        "status": result.status,
        "n_rows": result.n_rows,
        "drift_share": result.drift_share,
        "dataset_drifted": result.dataset_drifted,
        "drifted_columns": list(result.drifted_columns),
        "columns": list(result_columns(result)),
    }


def format_table(stream: StreamConfig, result: DriftResult) -> str:
    """A fixed-width table, one line per column x method, then the verdict."""
    if result.status != "ok":
        return (
            f"stream {stream.name}: {result.status} "
            f"({result.n_rows} rows; at least {stream.window.min_rows} needed)"
        )
    header = ("column", "kind", "method", "statistic", "p-value", "threshold", "drifted", "missing")
    lines = [header]
    for column in result.columns:
        for i, r in enumerate(column.results):
            lines.append(
                (
                    column.column if i == 0 else "",
                    column.kind if i == 0 else "",
                    r.method,
                    f"{r.statistic:.4g}",
                    "-" if r.p_value is None else f"{r.p_value:.3g}",
                    f"{r.threshold:.4g} ({'p' if r.kind == 'p_value' else 'stat'})",
                    ("DRIFT" if r.drifted else "ok") + (" *" if i == 0 else ""),
                    f"{column.quality.missing_share:.1%}" if i == 0 else "",
                )
            )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in lines]
    drifted = ", ".join(result.drifted_columns) or "none"
    text.append("")
    text.append("* the first method decides whether a column drifted")
    text.append(
        f"{result.n_rows} rows; drifted columns: {drifted} "
        f"({result.drift_share:.0%}); dataset drift: {'YES' if result.dataset_drifted else 'no'}"
    )
    return "\n".join(text)


def dumps(stream: StreamConfig, result: DriftResult) -> str:
    """``to_json`` as one line."""
    return json.dumps(to_json(stream, result))
