"""Text helpers for the gate's reports: numbers, times and table cells that cannot break.

A GitHub-flavoured Markdown table row ends at a newline and splits at every unescaped
pipe, and a cell's text is parsed as Markdown (``*``, ``_``, backticks, ``<details>``,
``$math$``). Untrusted text (inputs, predictions, case ids, reasons) therefore goes
through :func:`cell`: truncated first, so an escape is never cut in half, then every
character that could start a span or end the cell is backslash-escaped and line breaks
become ``<br>``. Pure: no I/O.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any

CELL_LIMIT = 80
_ELLIPSIS = "..."
# Backslash-escapable ASCII punctuation that GitHub would read as markup in a cell or a
# list item: emphasis, code, links, HTML, strikethrough, entities, headings, math, pipes.
_MARKUP = re.compile(r"([\\`*_\[\]<>|~&#$])")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def text_of(value: Any) -> str:
    """A value as one string: text as is, ``None`` as empty, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def truncate(text: str, limit: int = CELL_LIMIT) -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``...`` when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(_ELLIPSIS), 0)] + _ELLIPSIS


def escape(text: str) -> str:
    """Markdown-inert text for a table cell or a list item: markup escaped, tabs and
    control characters turned into spaces, line breaks into ``<br>``."""
    text = _MARKUP.sub(r"\\\1", text.replace("\t", " "))
    text = _CONTROL.sub(" ", text)
    return _LINE_BREAK.sub("<br>", text)


def cell(value: Any, limit: int = CELL_LIMIT) -> str:
    """An untrusted value as a table cell: text, truncated to ``limit``, escaped."""
    return escape(truncate(text_of(value), limit))


def num(value: float | None) -> str:
    """A score or statistic to four significant digits; ``n/a`` when not a number."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.4g}"


def signed(value: float | None) -> str:
    """A difference with its sign."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:+.4g}"


def interval(lower: float, upper: float) -> str:
    return f"[{signed(lower)}, {signed(upper)}]"


def bound(value: float | None, side: str | None, level: float | None) -> str:
    """A one-sided bound of a difference with its side and level: ``at most -0.0251
    (95%)``; ``n/a`` for verdicts stored without one."""
    if value is None or side is None or level is None or not math.isfinite(value):
        return "n/a"
    return f"{'at most' if side == 'upper' else 'at least'} {signed(value)} ({100 * level:.4g}%)"


def p_value(value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    if value < 1e-4:
        return "<0.0001"
    return f"{value:.4f}"


def count(value: int | None) -> str:
    """A count with thousands separators; ``unknown`` for ``None`` (never 0)."""
    return "unknown" if value is None else f"{value:,}"


def money(cost: float | None, currency: str | None) -> str:
    """A cost with its currency; ``unknown`` for ``None``: an unknown cost is not 0."""
    if cost is None:
        return "unknown"
    return f"{cost:,.4f} {currency}" if currency else f"{cost:,.4f}"


def seconds(value: float | None) -> str:
    """A latency: milliseconds below one second, else seconds."""
    if value is None or not math.isfinite(value):
        return "unknown"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


def percent(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "unknown"
    return f"{value * 100:.1f}%"


def short_hash(digest: str) -> str:
    """The first 12 hex digits of a sha256: enough to tell dataset versions apart."""
    return digest[:12]


def when(moment: datetime | None) -> str:
    """A stored timestamp in UTC to the second; naive timestamps are taken as UTC."""
    if moment is None:
        return "unknown"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
