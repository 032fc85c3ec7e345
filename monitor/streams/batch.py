"""Ingest batches: parse a request body, check it against the stream's schema, encode it.

A batch is all or nothing: every record is checked before anything is stored, and a bad
batch raises ``BatchError`` listing the first offending rows and columns. An accepted
batch becomes one Arrow table (timestamp in UTC microseconds, numbers as float64, the rest
as strings), stored as compressed Arrow IPC bytes, one store row per batch: that is what
makes ingest fast (no per-record INSERT) and a window read cheap.

Accepted bodies: a JSON array of objects, NDJSON (one object per line), CSV with a header
row, and Parquet. JSON's ``NaN``/``Infinity`` extensions are refused: a missing value is
``null``.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pa_compute
import pyarrow.csv as pa_csv
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pa_parquet

from monitor.config.streams import StreamConfig
from monitor.errors import BatchError

MAX_PROBLEMS = 20
"""How many offending cells a 422 answer lists; the total is always given."""

BodyFormat = Literal["json", "ndjson", "csv", "parquet"]
Problem = tuple[int | None, str | None, str]
_MISSING = object()
_IPC_OPTIONS = pa_ipc.IpcWriteOptions(compression="zstd")


@dataclass(frozen=True, slots=True)
class Batch:
    """A validated batch: its Arrow table and the time span of its rows."""

    table: pa.Table
    first_ts: datetime
    last_ts: datetime

    @property
    def n_rows(self) -> int:
        return int(self.table.num_rows)


def body_format(content_type: str | None) -> BodyFormat | None:
    """The body format a ``Content-Type`` names, ``None`` for an unsupported one."""
    media = (content_type or "application/json").split(";", 1)[0].strip().lower()
    return {
        "application/json": "json",
        "application/x-ndjson": "ndjson",
        "application/ndjson": "ndjson",
        "application/jsonl": "ndjson",
        "application/jsonlines": "ndjson",
        "text/csv": "csv",
        "application/vnd.apache.parquet": "parquet",
        "application/x-parquet": "parquet",
    }.get(media)  # type: ignore[return-value]


def parse_batch(stream: StreamConfig, body: bytes, fmt: BodyFormat) -> Batch:
    """Parse ``body`` and validate every record against ``stream``'s schema."""
    if fmt in ("json", "ndjson"):
        records = _json_records(body, fmt)
        columns = _columns_of_records(stream, records)
        n_rows = len(records)
    else:
        table = _read_table(body, fmt)
        columns = _columns_of_table(stream, table)
        n_rows = table.num_rows
    if n_rows == 0:
        raise BatchError([(None, None, "the batch holds no records")])
    return _build(stream, columns, n_rows)


def parse_labels(stream: StreamConfig, body: bytes) -> list[tuple[str, str | None]]:
    """Late labels from a JSON array of ``{record_id: ..., label: ...}`` objects, checked
    whole like a batch; labels are kept as text (numbers in their shortest repr)."""
    assert stream.label is not None and stream.record_id is not None
    records = _json_records(body, "json")
    if not records:
        raise BatchError([(None, None, "the batch holds no labels")])
    check = _number if stream.label_kind == "numerical" else _text
    problems: list[Problem] = []
    labels: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for row, record in enumerate(records):
        if not isinstance(record, dict) or set(record) != {stream.record_id, stream.label}:
            keys = f"{stream.record_id!r} and {stream.label!r}"
            problems.append((row, None, f"expected an object with exactly {keys}"))
            continue
        try:
            record_id = _text(record[stream.record_id])
            label = check(record[stream.label])
        except ValueError as exc:
            problems.append((row, None, str(exc)))
            continue
        if record_id is None or record_id in seen:
            problems.append((row, stream.record_id, "missing or repeated record id"))
            continue
        seen.add(record_id)
        labels.append((record_id, None if label is None else str(label)))
    _raise_if(problems)
    return labels


def encode(table: pa.Table) -> bytes:
    """The table as compressed Arrow IPC stream bytes."""
    sink = io.BytesIO()
    with pa_ipc.new_stream(sink, table.schema, options=_IPC_OPTIONS) as writer:
        writer.write_table(table)
    return sink.getvalue()


def decode(payload: bytes) -> pa.Table:
    """The table ``encode`` wrote."""
    with pa_ipc.open_stream(pa.BufferReader(payload)) as reader:
        return reader.read_all()


def arrow_schema(stream: StreamConfig) -> pa.Schema:
    """The Arrow schema every batch of ``stream`` is stored with."""
    fields = [pa.field(stream.timestamp, pa.timestamp("us", tz="UTC"), nullable=False)]
    for name, kind in stream.drift_columns():
        fields.append(pa.field(name, pa.float64() if kind == "numerical" else pa.string()))
    if stream.record_id is not None:
        fields.append(pa.field(stream.record_id, pa.string()))
    return pa.schema(fields)


# -- parsing --------------------------------------------------------------------------


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON; send null for a missing value")


def _json_records(body: bytes, fmt: BodyFormat) -> list[Any]:
    try:
        if fmt == "json":
            data = json.loads(body, parse_constant=_refuse_constant)
            if not isinstance(data, list):
                raise BatchError([(None, None, "expected a JSON array of objects")])
            return data
        return [
            json.loads(line, parse_constant=_refuse_constant)
            for line in body.splitlines()
            if line.strip()
        ]
    except (ValueError, UnicodeDecodeError) as exc:
        raise BatchError([(None, None, f"not valid {fmt.upper()}: {exc}")]) from None


def _read_table(body: bytes, fmt: BodyFormat) -> pa.Table:
    try:
        if fmt == "csv":
            return pa_csv.read_csv(pa.BufferReader(body))
        return pa_parquet.read_table(pa.BufferReader(body))
    except (pa.ArrowException, OSError) as exc:
        raise BatchError([(None, None, f"not a readable {fmt} file: {exc}")]) from None


def _columns_of_records(stream: StreamConfig, records: Sequence[Any]) -> dict[str, list[Any]]:
    allowed = set(stream.schema_columns())
    required = [stream.timestamp, *(n for n, _ in stream.monitored_columns())]
    # Fast path: most batches carry exactly the same keys in every record.
    full, minimal = allowed, set(required)
    if all(type(r) is dict and (r.keys() == full or r.keys() == minimal) for r in records):
        return {name: [r.get(name) for r in records] for name in allowed}
    problems: list[Problem] = []
    for row, record in enumerate(records):
        if not isinstance(record, dict):
            problems.append((row, None, "expected a JSON object"))
            continue
        for key in record.keys() - allowed:
            problems.append((row, key, "unknown column; not in the stream's schema"))
        for key in required:
            if key not in record:
                problems.append((row, key, "missing column (send null for a missing value)"))
    _raise_if(problems)
    return {name: [r.get(name) for r in records] for name in allowed}


def _columns_of_table(stream: StreamConfig, table: pa.Table) -> dict[str, list[Any]]:
    allowed = set(stream.schema_columns())
    required = [stream.timestamp, *(n for n, _ in stream.monitored_columns())]
    present = set(table.column_names)
    problems: list[Problem] = [
        (None, name, "unknown column; not in the stream's schema")
        for name in sorted(present - allowed)
    ]
    problems += [(None, name, "missing column") for name in required if name not in present]
    _raise_if(problems)
    return {
        name: table.column(name).to_pylist() if name in present else [None] * table.num_rows
        for name in allowed
    }


# -- validation -----------------------------------------------------------------------


def _build(stream: StreamConfig, columns: Mapping[str, list[Any]], n_rows: int) -> Batch:
    schema = arrow_schema(stream)
    kinds = dict(stream.drift_columns())
    problems: list[Problem] = []
    arrays: list[pa.Array] = []
    for field in schema:
        name = field.name
        kind = "timestamp" if name == stream.timestamp else kinds.get(name, "text")
        values = columns[name]
        array = _fast(values, kind, field.type)
        if array is None:
            check = {"timestamp": _timestamp, "numerical": _number}.get(kind, _text)
            checked = _checked(values, check, name, problems)
            array = None if problems else pa.array(checked, type=field.type)
        if array is not None:
            arrays.append(array)
    _raise_if(problems)
    table = pa.Table.from_arrays(arrays, schema=schema)
    stamps = table.column(stream.timestamp)
    first = pa_compute.min(stamps).as_py()
    last = pa_compute.max(stamps).as_py()
    assert table.num_rows == n_rows
    return Batch(table=table, first_ts=first, last_ts=last)


def _fast(values: list[Any], kind: str, target: pa.DataType) -> pa.Array | None:
    """Convert a column in Arrow's C code when every value is plainly valid; ``None``
    sends the column through the per-value checks, which name each bad value."""
    try:
        if kind == "timestamp":
            array = pa.array(values, type=pa.string()).cast(target)
            return None if array.null_count else array
        if kind == "numerical":
            if bool in set(map(type, values)):  # Arrow would read True as 1.0
                return None
            inferred = pa.array(values)
            if not (pa.types.is_floating(inferred.type) or pa.types.is_integer(inferred.type)):
                return None if inferred.type != pa.null() else inferred.cast(target)
            array = inferred.cast(target)
            finite = pa_compute.is_finite(array)
            return array if pa_compute.all(finite).as_py() in (True, None) else None
        return pa.array(values, type=pa.string())
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None


def _checked(
    values: Iterable[Any], check: Callable[[Any], Any], name: str, problems: list[Problem]
) -> list[Any]:
    out: list[Any] = []
    for row, value in enumerate(values):
        try:
            out.append(check(value))
        except ValueError as exc:
            problems.append((row, name, str(exc)))
    return out


def _number(value: Any) -> float | None:
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number or null, got {value!r}")
        return value  # type: ignore[no-any-return]
    if kind is int:
        return float(value)
    if value is None:
        return None
    raise ValueError(f"expected a number or null, got {type(value).__name__}")


def _text(value: Any) -> str | None:
    kind = type(value)
    if kind is str or value is None:
        return value  # type: ignore[no-any-return]
    if kind is int:
        return str(value)
    raise ValueError(f"expected a string or null, got {type(value).__name__}")


def _timestamp(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("expected an ISO 8601 time like 2024-05-01T12:00:00Z") from None
    if not isinstance(value, datetime):
        raise ValueError(f"expected an ISO 8601 time string, got {type(value).__name__}")
    if value.tzinfo is None:
        raise ValueError("expected a time with an offset (Z or +HH:MM)")
    return value.astimezone(UTC)


def _raise_if(problems: list[Problem]) -> None:
    if problems:
        raise BatchError(problems[:MAX_PROBLEMS], total=len(problems))
