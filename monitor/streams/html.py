"""The human drift report: the engine's own verdicts on one window, with pictures.

The page shows what the engine decided and why, per column: every method's statistic,
p-value and threshold, the ``drifted`` flag, the quality signals, and a histogram of the
reference against the window (shares, on bins cut at the reference's quantiles; the top
categories for categorical columns). It is never a second opinion: no statistic on it is
computed by anything but the engine, and the plots only count values.

Every value on the page comes from a Mako template whose default filter escapes HTML, so
ingested text cannot become markup: the page has no script at all, and the daemon serves it
(and the page declares itself) under a Content-Security-Policy that allows none, nor any
style but its own. Plots are inline SVG drawn from a bounded sample of at most
``report.sample_rows`` rows of each side, so the page costs the same on a window of any size.
"""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitor.config.streams import StreamConfig
from monitor.drift import ColumnDrift, DriftResult

__all__ = ["CONTENT_SECURITY_POLICY", "render_report"]

# Bars per numerical plot, and categories per categorical plot before "(other)".
BINS = 20
TOP_CATEGORIES = 12

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:72em;color:#1f2328}
h1{font-size:1.5em}h2{font-size:1.15em;margin:0}
table{border-collapse:collapse}td,th{padding:2px 10px;text-align:left;
border-bottom:1px solid #d0d7de}th{font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums}
.summary td{border:0}.column{border:1px solid #d0d7de;border-radius:6px;padding:1em;
margin:1em 0}.drifted{border-left:6px solid #cf222e}.stable{border-left:6px solid #1a7f37}
.flag{font-weight:600}.drifted .flag{color:#cf222e}.stable .flag{color:#1a7f37}
.plot{margin-top:.5em}.ref{fill:#8c959f}.cur{fill:#0969da}.axis{stroke:#8c959f}
.label{font-size:11px;fill:#57606a}.legend{font-size:12px}.notes{color:#57606a}
"""


@cache
def _style_hash() -> str:
    digest = hashlib.sha256(_STYLE.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


@cache
def content_security_policy() -> str:
    """The policy the page is served under: nothing loads, nothing runs, only its own
    style block applies (by hash)."""
    return (
        f"default-src 'none'; style-src '{_style_hash()}'; img-src 'none'; "
        "base-uri 'none'; form-action 'none'"
    )


# The policy the daemon sends as a header; it adds what a <meta> element cannot carry.
CONTENT_SECURITY_POLICY = content_security_policy() + "; frame-ancestors 'none'"


@dataclass(frozen=True)
class Bar:
    label: str
    reference: float
    current: float


@dataclass(frozen=True)
class Plot:
    """Shares of the reference and of the window per bin or category."""

    bars: tuple[Bar, ...]
    caption: str

    @property
    def peak(self) -> float:
        return max([b.reference for b in self.bars] + [b.current for b in self.bars] + [1e-12])


def render_report(
    stream: StreamConfig,
    result: DriftResult,
    reference: pa.Table,
    current: pa.Table,
    *,
    window: str | None = None,
) -> str:
    """The report page for ``result``, the engine's judgement of ``current``."""
    limit, seed = stream.report.sample_rows, stream.thresholds.seed
    ref = _sample(reference, limit, seed=seed)
    cur = _sample(current, limit, seed=seed)
    columns = [
        {"drift": column, "plot": _plot(column, ref, cur), "rows": _rows(column)}
        for column in result.columns
    ]
    return str(
        _template().render(
            stream=stream,
            result=result,
            window=window,
            columns=columns,
            style=_STYLE,
            csp=content_security_policy(),
            fmt=_fmt,
            sample_rows=limit,
            ref_rows=reference.num_rows,
            cur_rows=current.num_rows,
        )
    )


@cache
def _template() -> Any:
    from mako.template import Template

    source = resources.files("monitor.streams").joinpath("report.html.mako")
    # ``h`` escapes every ${...} (markupsafe: & < > " '); the template never turns it off.
    return Template(
        source.read_text(encoding="utf-8"), default_filters=["h"], strict_undefined=True
    )


def _rows(column: ColumnDrift) -> list[dict[str, Any]]:
    return [
        {
            "method": r.method,
            "statistic": r.statistic,
            "p_value": r.p_value_adjusted if r.p_value_adjusted is not None else r.p_value,
            "compared": "p-value" if r.kind == "p_value" else "statistic",
            "threshold": r.threshold,
            "drifted": r.drifted,
            "decides": i == 0,
        }
        for i, r in enumerate(column.results)
    ]


def _plot(column: ColumnDrift, ref: pa.Table, cur: pa.Table) -> Plot | None:
    name = column.column
    if column.source is not None or name not in ref.column_names or name not in cur.column_names:
        return None  # text descriptors are computed by the engine, not columns of the data
    if column.kind == "numerical":
        return _histogram(_floats(ref.column(name)), _floats(cur.column(name)))
    return _categories(ref.column(name), cur.column(name))


def _floats(values: pa.ChunkedArray) -> np.ndarray:
    try:
        floats: np.ndarray = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return np.array([], dtype=float)
    finite: np.ndarray = floats[np.isfinite(floats)]
    return finite


def _histogram(ref: np.ndarray, cur: np.ndarray) -> Plot | None:
    if ref.size == 0:
        return None
    lo, hi = np.quantile(ref, [0.005, 0.995])
    if not hi > lo:
        lo, hi = float(ref.min()) - 0.5, float(ref.max()) + 0.5
    edges = np.linspace(lo, hi, BINS + 1)
    inner = edges[1:-1]

    def shares(values: np.ndarray) -> np.ndarray:
        # Everything below the first inner edge lands in bin 0, above the last in the last
        # bin, so the tails are shown, not dropped.
        counts = np.bincount(np.searchsorted(inner, values, side="right"), minlength=BINS)
        return counts / max(values.size, 1)

    r, c = shares(ref), shares(cur)
    bars = tuple(Bar(_fmt(edges[i]), float(r[i]), float(c[i])) for i in range(BINS))
    caption = f"share of rows per bin, {_fmt(lo)} to {_fmt(hi)} (tails in the end bins)"
    return Plot(bars, caption)


def _categories(ref: pa.ChunkedArray, cur: pa.ChunkedArray) -> Plot | None:
    ref_counts, ref_total = _value_counts(ref)
    cur_counts, cur_total = _value_counts(cur)
    if not ref_counts and not cur_counts:
        return None
    ranked = sorted(ref_counts, key=lambda k: (-ref_counts[k], k))[:TOP_CATEGORIES]
    new = sorted((k for k in cur_counts if k not in ref_counts), key=lambda k: -cur_counts[k])
    shown = ranked + new[: max(TOP_CATEGORIES - len(ranked), 3)]
    bars = [
        Bar(k, ref_counts.get(k, 0) / max(ref_total, 1), cur_counts.get(k, 0) / max(cur_total, 1))
        for k in shown
    ]
    rest_ref = ref_total - sum(ref_counts.get(k, 0) for k in shown)
    rest_cur = cur_total - sum(cur_counts.get(k, 0) for k in shown)
    if rest_ref or rest_cur:
        bars.append(Bar("(other)", rest_ref / max(ref_total, 1), rest_cur / max(cur_total, 1)))
    return Plot(tuple(bars), "share of rows per category (new categories after the reference's)")


def _value_counts(values: pa.ChunkedArray) -> tuple[dict[str, int], int]:
    strings = values if pa.types.is_string(values.type) else pc.cast(values, pa.string())
    present = strings.drop_null()
    if len(present) == 0:
        return {}, 0
    counts = {str(i["values"]): int(i["counts"]) for i in pc.value_counts(present).to_pylist()}
    return counts, len(present)


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if value == 0 or 1e-3 <= abs(value) < 1e6:
        return f"{value:.4g}"
    return f"{value:.3e}"


def _sample(table: pa.Table, limit: int, *, seed: int) -> pa.Table:
    if table.num_rows <= limit:
        return table
    rows = np.sort(np.random.default_rng(seed).choice(table.num_rows, size=limit, replace=False))
    return table.take(pa.array(rows))
