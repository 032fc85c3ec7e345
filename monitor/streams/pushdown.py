"""SQL push-down: the database counts, so a window's rows never leave it.

For a numerical column the bucket of a value is the number of the profile's inner bin
edges ``<=`` it (the engine's bin numbering), written as a portable ``CASE`` expression
that PostgreSQL, DuckDB and SQLite all run; the database answers ``GROUP BY bucket`` with
one count per bin. A categorical column is ``GROUP BY`` the value itself. What crosses the
wire is a few rows per column, whatever the window's size; ``compare_counts`` then works
from the counts. Of a text column's descriptors only the length has a portable SQL form
(``length()``, in characters); word count, non-letter share and out-of-vocabulary share
need the text itself and are left out of a push-down report.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine, case, column, func, literal, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import ColumnElement, Subquery

from monitor.drift import ColumnCounts, ReferenceProfile
from monitor.drift.text import descriptor_name
from monitor.errors import SourceError
from monitor.store.engine import describe_error

__all__ = ["bucket_expression", "pushdown_counts"]


def bucket_expression(value: ColumnElement[Any], edges: np.ndarray) -> ColumnElement[Any]:
    """``CASE WHEN v < e1 THEN 0 WHEN v < e2 THEN 1 ... ELSE k END`` (NULL stays NULL)."""
    if len(edges) == 0:
        return case((value.is_(None), None), else_=literal(0))
    whens: list[tuple[ColumnElement[bool], Any]] = [(value.is_(None), None)]
    whens += [(value < float(edge), literal(i)) for i, edge in enumerate(edges)]
    return case(*whens, else_=literal(len(edges)))


def pushdown_counts(
    engine: Engine,
    query: str,
    *,
    profile: ReferenceProfile,
    timestamp: str,
    start: datetime,
    end: datetime,
) -> tuple[dict[str, ColumnCounts], int]:
    """Counts per bin and per category of every numerical and categorical column of
    ``profile`` over the rows of ``query`` in ``[start, end)``, and the window's row count."""
    specs = list(profile.columns)
    names = [timestamp, *(s.name for s in specs)]
    source = text(query).columns(*(column(n) for n in names)).subquery("src")
    window = (source.c[timestamp] >= start, source.c[timestamp] < end)
    counts: dict[str, ColumnCounts] = {}
    try:
        with engine.connect() as connection:
            n_rows = int(
                connection.scalar(select(func.count()).select_from(source).where(*window)) or 0
            )
            for spec in specs:
                if spec.kind == "numerical":
                    counts[spec.name] = _numerical(connection, source, window, spec.name, profile)
                elif spec.kind == "text":
                    # Only the length descriptor has a portable SQL form (length()).
                    name = descriptor_name(spec.name, "length")
                    value = func.length(func.nullif(source.c[spec.name], ""))
                    counts[name] = _binned(
                        connection, source, window, value, profile.bin_edges(name)
                    )
                else:
                    counts[spec.name] = _categorical(connection, source, window, spec.name)
    except SQLAlchemyError as exc:
        raise SourceError(f"push-down query failed: {describe_error(exc, engine.url)}") from None
    return counts, n_rows


def _numerical(
    connection: Any, source: Subquery, window: Sequence[Any], name: str, profile: ReferenceProfile
) -> ColumnCounts:
    return _binned(connection, source, window, source.c[name], profile.bin_edges(name))


def _binned(
    connection: Any,
    source: Subquery,
    window: Sequence[Any],
    value: ColumnElement[Any],
    edges: np.ndarray,
) -> ColumnCounts:
    bucket = bucket_expression(value, edges).label("bucket")
    query = select(bucket, func.count()).select_from(source).where(*window).group_by(bucket)
    bins = np.zeros(len(edges) + 1, dtype=np.int64)
    missing = 0
    for index, count in connection.execute(query):
        if index is None:
            missing += int(count)
        else:
            bins[int(index)] += int(count)
    return ColumnCounts(bins=bins, missing=missing)


def _categorical(
    connection: Any, source: Subquery, window: Sequence[Any], name: str
) -> ColumnCounts:
    value = source.c[name]
    query = select(value, func.count()).select_from(source).where(*window).group_by(value)
    categories: dict[str, int] = {}
    missing = 0
    for category, count in connection.execute(query):
        if category is None or category == "":
            missing += int(count)
        else:
            key = str(category)
            categories[key] = categories.get(key, 0) + int(count)
    return ColumnCounts(categories=categories, missing=missing)
