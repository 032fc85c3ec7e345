"""Reading a stream's data: reference and current windows, from files, SQL or the store.

Every reader returns an Arrow table; ``to_columns`` turns it into the column -> numpy
array mapping the drift engine takes (numerical as float64 with NaN for missing,
categorical and text as object arrays with ``None`` for missing). Windows are half-open,
``[start, end)``, on the stream's timestamp column.
"""

from __future__ import annotations

import glob as globbing
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pa_parquet

from monitor.config.streams import StreamConfig
from monitor.errors import SourceError

if TYPE_CHECKING:  # SQL and the store are imported by the readers that use them, so that
    # reading files (``monitor drift --current``) pays for neither
    from sqlalchemy import Engine

    from monitor.store.parts import HasStreams

__all__ = [
    "in_window",
    "read_file",
    "read_glob",
    "read_sql",
    "read_store_rows",
    "read_store_window",
    "sql_engine",
    "to_columns",
]


def read_file(path: Path | str, columns: Sequence[str] | None = None) -> pa.Table:
    """A Parquet, CSV or JSONL file as a table (by suffix). With ``columns``, Parquet and
    CSV read only those of them the file has (column by column, the rest never decoded);
    a missing one is reported by ``to_columns``, by name."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            if columns is None:
                return pa_parquet.read_table(path)
            # ParquetFile, not read_table: the dataset layer costs a quarter of a second
            # to import and a single file does not need it. One column at a time: the
            # decoder's buffers then never hold the whole file (466 MB of resident memory
            # for 200 MB of columns read at once, 290 MB one by one, at 1M rows x 25)
            with pa_parquet.ParquetFile(path, pre_buffer=False) as parquet:
                names = [c for c in columns if c in parquet.schema_arrow.names]
                return pa.table({c: parquet.read(columns=[c]).column(0) for c in names})
        if suffix == ".csv":
            if columns is None:
                return pa_csv.read_csv(path)
            with pa_csv.open_csv(path) as reader:  # the header only: the first block
                names = reader.schema.names
            wanted = [c for c in columns if c in names]
            return pa_csv.read_csv(
                path, convert_options=pa_csv.ConvertOptions(include_columns=wanted)
            )
        if suffix in (".jsonl", ".ndjson", ".json"):
            return pa_json.read_json(path)
    except (pa.ArrowException, OSError) as exc:
        raise SourceError(f"cannot read '{path}': {exc}") from None
    raise SourceError(f"'{path}': expected a .parquet, .csv or .jsonl file")


def read_glob(pattern: str, timestamp: str, start: datetime, end: datetime) -> pa.Table | None:
    """Rows of every file matching ``pattern`` with ``timestamp`` in ``[start, end)``;
    ``None`` when no file matches."""
    paths = sorted(globbing.glob(pattern))
    if not paths:
        return None
    tables = [in_window(read_file(p), timestamp, start, end) for p in paths]
    return pa.concat_tables(tables, promote_options="permissive")


def in_window(table: pa.Table, timestamp: str, start: datetime, end: datetime) -> pa.Table:
    """The rows of ``table`` with ``timestamp`` in ``[start, end)``."""
    if timestamp not in table.column_names:
        raise SourceError(f"the data has no timestamp column {timestamp!r}")
    stamps = table.column(timestamp)
    if pa.types.is_string(stamps.type) or pa.types.is_large_string(stamps.type):
        stamps = pc.cast(stamps, pa.timestamp("us", tz="UTC"))
    elif pa.types.is_timestamp(stamps.type) and stamps.type.tz is None:
        stamps = pc.assume_timezone(stamps, "UTC")
    lower = pa.scalar(start, type=pa.timestamp("us", tz="UTC"))
    upper = pa.scalar(end, type=pa.timestamp("us", tz="UTC"))
    mask = pc.and_(pc.greater_equal(stamps, lower), pc.less(stamps, upper))
    return table.filter(mask)


def sql_engine(url: str) -> Engine:
    """An engine for a user's database; the URL never appears in an error."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError

    from monitor.store import redact_url

    try:
        return create_engine(url)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise SourceError(f"{redact_url(url)}: cannot connect: {type(exc).__name__}") from None


def read_sql(
    engine: Engine,
    query: str,
    *,
    columns: Sequence[str] | None = None,
    timestamp: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
) -> pa.Table:
    """The ``columns`` of ``query``'s rows (all of them without ``columns``), restricted to
    ``[start, end)`` on ``timestamp`` when given: the query is wrapped as a subquery and
    the database filters. The timestamp itself is not fetched unless asked for. ``limit``
    bounds the rows (any ``limit`` rows: a sample for a picture, not for statistics)."""
    from sqlalchemy import column, select, text
    from sqlalchemy.exc import SQLAlchemyError

    from monitor.store.engine import describe_error

    statement: Any = text(query)
    if columns is not None:
        declared = list(dict.fromkeys([*columns, *([timestamp] if timestamp else [])]))
        source = statement.columns(*(column(c) for c in declared)).subquery("src")
        statement = select(*(source.c[c] for c in columns))
        if timestamp is not None and start is not None and end is not None:
            statement = statement.where(source.c[timestamp] >= start, source.c[timestamp] < end)
        if limit is not None:
            statement = statement.limit(limit)
    try:
        with engine.connect() as connection:
            result = connection.execute(statement)
            names = list(result.keys())
            rows = result.all()
    except SQLAlchemyError as exc:
        raise SourceError(f"query failed: {describe_error(exc, engine.url)}") from None
    return pa.table({name: [row[i] for row in rows] for i, name in enumerate(names)})


def read_store_window(
    store: HasStreams, stream: str, start: datetime, end: datetime, ts: str
) -> pa.Table:
    """Ingested rows of ``stream`` timestamped in ``[start, end)``."""
    from monitor.streams.batch import decode

    batches = store.streams.batches_between(stream, start, end)
    if not batches:
        return pa.table({})
    table = pa.concat_tables([decode(b.payload) for b in batches], promote_options="permissive")
    return in_window(table, ts, start, end)


def read_store_rows(store: HasStreams, stream: str, first_row: int, end_row: int) -> pa.Table:
    """Ingested rows of ``stream`` numbered ``[first_row, end_row)``."""
    from monitor.streams.batch import decode

    batches = store.streams.batches_for_rows(stream, first_row, end_row)
    if not batches:
        return pa.table({})
    table = pa.concat_tables([decode(b.payload) for b in batches], promote_options="permissive")
    offset = first_row - batches[0].first_row
    return table.slice(max(offset, 0), end_row - first_row)


def to_columns(
    table: pa.Table, stream: StreamConfig, origin: str | None = None
) -> dict[str, np.ndarray]:
    """The monitored columns of ``table`` as the arrays the drift engine takes; ``origin``
    (a file, say) opens error messages."""
    where = f"{origin}: " if origin else ""
    out: dict[str, np.ndarray] = {}
    for name, kind in stream.drift_columns():
        if name not in table.column_names:
            if table.num_rows == 0:
                out[name] = np.array([], dtype=float if kind == "numerical" else object)
                continue
            raise SourceError(f"{where}the data has no column {name!r} (stream {stream.name!r})")
        values = table.column(name)
        if kind == "numerical":
            try:
                floats = pc.cast(values, pa.float64())
            except pa.ArrowInvalid:
                row, value = _first_not_number(values)
                raise SourceError(
                    f"{where}column {name!r}: expected numbers; row {row} (the first row "
                    f"is 1, a header not counted) holds {value!r}"
                ) from None
            out[name] = _floats(floats)
        else:
            out[name] = _objects(values)
    return out


def _floats(values: pa.ChunkedArray) -> np.ndarray:
    """float64 values with NaN for nulls, read from the Arrow buffers with numpy: a
    read-only view of one null-free chunk (an engine writing into it would raise), one copy
    otherwise, and no pandas (Arrow's own null-aware conversions import it)."""
    array = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    validity, data = array.buffers()
    floats = np.frombuffer(data, dtype=np.float64, count=array.offset + len(array))
    floats = floats[array.offset :]
    if array.null_count == 0:
        return floats
    bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
    out = floats.copy()
    out[~bits[array.offset : array.offset + len(array)].astype(bool)] = np.nan
    return out


def _objects(values: pa.ChunkedArray) -> np.ndarray:
    """Strings as an object array with None for missing, each distinct string ONE Python
    object (dictionary-encoded): a million rows of 50 categories make 50 strings, not a
    million, which is most of the time and memory of the conversion."""
    strings = values if pa.types.is_string(values.type) else pc.cast(values, pa.string())
    encoded = pc.dictionary_encode(strings).combine_chunks()
    levels = np.array([*encoded.dictionary.to_pylist(), None], dtype=object)
    indices = encoded.indices.fill_null(len(encoded.dictionary))
    return np.asarray(levels[indices.to_numpy(zero_copy_only=False)])


def _first_not_number(values: pa.ChunkedArray) -> tuple[int, str]:
    """The 1-based row and (shortened) value of the first entry that does not cast to a
    float, found by halving: O(log n) casts, with Arrow's own rules of what a number is."""
    lo, hi = 0, len(values)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            pc.cast(values.slice(lo, mid - lo), pa.float64())
        except pa.ArrowInvalid:
            hi = mid
        else:
            lo = mid
    value = str(values[lo].as_py())
    return lo + 1, value if len(value) <= 40 else value[:37] + "..."
