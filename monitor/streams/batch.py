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

import codecs
import hashlib
import io
import json
import math
import operator
import re
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
_IPC_PLAIN = pa_ipc.IpcWriteOptions()
COMPRESS_FROM = 64 * 1024
"""Tables of at least this many bytes are stored zstd-compressed."""


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
    parser = BatchParser(stream, fmt)
    parser.feed(body)
    return parser.finish()


class BatchParser:
    """Parse a body as it arrives, into column buffers of at most ``CHUNK_ROWS`` records.

    JSON arrays and NDJSON are decoded by the standard library's C scanner as they arrive
    (an array's complete records of each piece at once, NDJSON line by line) and every
    ``CHUNK_ROWS`` records become Arrow arrays, so neither the body nor a list of every
    record is ever held: memory is the Arrow columns plus about one chunk of records.
    CSV and Parquet need the whole file (Parquet's footer is at its end), so their bytes
    are kept and read by pyarrow, column by column in Arrow.
    ``feed`` and ``finish`` raise ``BatchError``; ``digest`` fingerprints the body.
    """

    def __init__(self, stream: StreamConfig, fmt: BodyFormat) -> None:
        self._stream = stream
        self._fmt = fmt
        self._schema = arrow_schema(stream)
        self._problems = _Problems()
        self._batches: list[pa.RecordBatch] = []
        self._records: list[Any] = []
        self._rows = 0
        self._text = ""
        self._state = "start"
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._file = bytearray()
        self.digest = hashlib.sha256(fmt.encode())
        self.size = 0

    def feed(self, chunk: bytes) -> None:
        """Take the next piece of the body."""
        self.digest.update(chunk)
        self.size += len(chunk)
        if self._fmt in ("csv", "parquet"):
            self._file += chunk
            return
        try:
            self._text += self._utf8.decode(chunk)
        except UnicodeDecodeError as exc:
            raise BatchError([(None, None, f"not valid UTF-8: {exc.reason}")]) from None
        self._scan(final=False)

    def finish(self) -> Batch:
        """The validated batch, once the whole body was fed."""
        if self._fmt in ("csv", "parquet"):
            table = _read_table(bytes(self._file), self._fmt)
            self._file = bytearray()
            self._add_table(table)
        else:
            self._text += self._utf8.decode(b"", final=True)
            self._scan(final=True)
            self._flush()
        self._problems.raise_if()
        if self._rows == 0:
            raise BatchError([(None, None, "the batch holds no records")])
        table = pa.Table.from_batches(self._batches, schema=self._schema)
        stamps = table.column(self._stream.timestamp)
        first = pa_compute.min(stamps).as_py()
        last = pa_compute.max(stamps).as_py()
        return Batch(table=table, first_ts=first, last_ts=last)

    # -- JSON ---------------------------------------------------------------------------

    def _scan(self, *, final: bool) -> None:
        try:
            if self._fmt == "ndjson":
                self._lines(final)
            else:
                self._array(final)
        except RecursionError:
            row = self._rows + len(self._records)
            raise BatchError([(row, None, "a value is nested too deeply")]) from None

    def _lines(self, final: bool) -> None:
        text = self._text
        lines = text.split("\n")
        self._text = "" if final else lines.pop()
        for line in lines:
            if line.strip():
                self._record(_decode_json(line, self._rows + len(self._records), "NDJSON"))

    def _array(self, final: bool) -> None:
        """Walk ``[ value , value ... ]``; a value cut off by the chunk's end waits for
        the next chunk (it is an error only when the body ends there)."""
        text, at = self._text, 0
        while True:
            at = _WHITESPACE.match(text, at).end()  # type: ignore[union-attr]
            if at == len(text):
                break
            char = text[at]
            if self._state == "start":
                if char != "[":
                    raise BatchError([(None, None, "expected a JSON array of objects")])
                self._state, at = "first", at + 1
            elif self._state in ("first", "after") and char == "]":
                self._state, at = "end", at + 1
            elif self._state == "after":
                if char != ",":
                    row = self._rows + len(self._records)
                    raise BatchError([(row, None, "not valid JSON: expected ',' or ']'")])
                self._state, at = "item", at + 1
            elif self._state in ("first", "item"):
                at, whole = self._many(text, at)
                if whole:
                    continue
                row = self._rows + len(self._records)
                try:
                    value, at = _DECODER.raw_decode(text, at)
                except json.JSONDecodeError as exc:
                    if not final:
                        break
                    raise BatchError([(row, None, f"not valid JSON: {exc.msg}")]) from None
                except ValueError as exc:
                    raise BatchError([(row, None, f"not valid JSON: {exc}")]) from None
                self._state = "after"
                self._record(value)
            else:
                raise BatchError([(None, None, "not valid JSON: data after the array")])
        self._text = text[at:]
        if final and self._state != "end":
            message = (
                "expected a JSON array of objects"
                if self._state == "start"
                else ("not valid JSON: the array is not closed")
            )
            raise BatchError([(None, None, message)])

    def _many(self, text: str, at: int) -> tuple[int, bool]:
        """Decode every complete value up to the text's last ``}`` in one C call.

        Sound because a prefix of the array's elements that ends inside a string or an
        unclosed object is not valid JSON once bracketed, so a successful parse ends on
        an element boundary. When it fails (a ``}`` inside text, a bad value) the caller
        decodes value by value, which names the offending row."""
        end = text.rfind("}", at)
        if end < 0:
            return at, False
        try:
            values = json.loads(f"[{text[at : end + 1]}]", parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            return at, False
        self._records.extend(values)
        self._state = "after"
        if len(self._records) >= CHUNK_ROWS:
            self._flush()
        return end + 1, True

    def _record(self, record: Any) -> None:
        self._records.append(record)
        if len(self._records) >= CHUNK_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._records:
            return
        records, self._records = self._records, []
        before = self._problems.total
        columns = _columns_of_records(self._stream, records, self._rows, self._problems)
        if self._problems.total > before:  # a record's keys are wrong: no values to check
            self._rows += len(records)
            return
        self._add(columns, len(records))

    # -- tables -------------------------------------------------------------------------

    def _add_table(self, table: pa.Table) -> None:
        allowed = set(self._stream.schema_columns())
        required = [self._stream.timestamp, *(n for n, _ in self._stream.monitored_columns())]
        present = set(table.column_names)
        for name in sorted(present - allowed):
            self._problems.add(None, name, "unknown column; not in the stream's schema")
        for name in required:
            if name not in present:
                self._problems.add(None, name, "missing column")
        if self._problems.total or table.num_rows == 0:
            return
        columns: dict[str, pa.ChunkedArray | None] = {
            name: table.column(name) if name in present else None for name in allowed
        }
        self._add(columns, table.num_rows)

    def _add(self, columns: Mapping[str, Any], n_rows: int) -> None:
        arrays = _arrays(self._stream, self._schema, columns, n_rows, self._rows, self._problems)
        self._rows += n_rows
        if arrays is not None and not self._problems.total:
            self._batches.append(pa.RecordBatch.from_arrays(arrays, schema=self._schema))


CHUNK_ROWS = 8192
"""Records decoded before they become Arrow arrays: bounds the Python objects held."""

_DECODER = json.JSONDecoder(parse_constant=lambda name: _refuse_constant(name))
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _decode_json(text: str, row: int, what: str) -> Any:
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        message = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise BatchError([(row, None, f"not valid {what}: {message}")]) from None


class _Problems:
    """The first ``MAX_PROBLEMS`` offending cells and how many there were in all."""

    def __init__(self) -> None:
        self.first: list[Problem] = []
        self.total = 0

    def add(self, row: int | None, column: str | None, message: str) -> None:
        self.total += 1
        if len(self.first) < MAX_PROBLEMS:
            self.first.append((row, column, message))

    def raise_if(self) -> None:
        if self.total:
            raise BatchError(self.first, total=self.total)


def parse_labels(stream: StreamConfig, body: bytes) -> list[tuple[str, str | None]]:
    """Late labels from a JSON array of ``{record_id: ..., label: ...}`` objects, checked
    whole like a batch; labels are kept as text (numbers in their shortest repr)."""
    assert stream.label is not None and stream.record_id is not None
    try:
        records = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise BatchError([(None, None, "a value is nested too deeply")]) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BatchError([(None, None, f"not valid JSON: {exc}")]) from None
    if not isinstance(records, list):
        raise BatchError([(None, None, "expected a JSON array of objects")])
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
    """The table as Arrow IPC stream bytes, zstd-compressed unless it is under
    ``COMPRESS_FROM`` bytes: a small batch's buffers shrink by about a tenth, for more
    CPU than the rest of storing it. ``decode`` reads either."""
    options = _IPC_OPTIONS if table.nbytes >= COMPRESS_FROM else _IPC_PLAIN
    sink = io.BytesIO()
    with pa_ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue()


def decode(payload: bytes) -> pa.Table:
    """The table ``encode`` wrote."""
    with pa_ipc.open_stream(pa.BufferReader(payload)) as reader:
        return reader.read_all()


def arrow_schema(stream: StreamConfig) -> pa.Schema:
    """The Arrow schema every batch of ``stream`` is stored with."""
    fields = [pa.field(stream.timestamp, pa.timestamp("us", tz="UTC"), nullable=False)]
    for name, kind in stream.stored_columns():
        fields.append(pa.field(name, pa.float64() if kind == "numerical" else pa.string()))
    if stream.record_id is not None:
        fields.append(pa.field(stream.record_id, pa.string()))
    return pa.schema(fields)


# -- parsing --------------------------------------------------------------------------


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON; send null for a missing value")


def _read_table(body: bytes, fmt: BodyFormat) -> pa.Table:
    try:
        if fmt == "csv":
            table = pa_csv.read_csv(pa.BufferReader(body))
        else:
            table = pa_parquet.read_table(pa.BufferReader(body))
        table.column_names  # noqa: B018 -- decoded lazily; a non-UTF-8 name fails here
    except UnicodeDecodeError:
        raise BatchError([(None, None, f"a {fmt} column name is not UTF-8")]) from None
    except (pa.ArrowException, OSError) as exc:
        raise BatchError([(None, None, f"not a readable {fmt} file: {exc}")]) from None
    return table


def _columns_of_records(
    stream: StreamConfig, records: Sequence[Any], offset: int, problems: _Problems
) -> dict[str, list[Any]]:
    allowed = set(stream.schema_columns())
    required = [stream.timestamp, *(n for n, _ in stream.monitored_columns())]
    # Fast path: most batches carry exactly the same keys in every record.
    full, minimal = allowed, set(required)
    if all(type(r) is dict and r.keys() == full for r in records):
        # Transposed in C: one tuple per record, then one per column.
        names = sorted(allowed)
        if len(names) == 1:
            return {names[0]: [r[names[0]] for r in records]}
        columns = zip(*map(operator.itemgetter(*names), records), strict=True)
        return dict(zip(names, map(list, columns), strict=True))
    if all(type(r) is dict and (r.keys() == full or r.keys() == minimal) for r in records):
        return {name: [r.get(name) for r in records] for name in allowed}
    for row, record in enumerate(records, start=offset):
        if not isinstance(record, dict):
            problems.add(row, None, "expected a JSON object")
            continue
        for key in record.keys() - allowed:
            problems.add(row, key, "unknown column; not in the stream's schema")
        for key in required:
            if key not in record:
                problems.add(row, key, "missing column (send null for a missing value)")
    return {name: [r.get(name) for r in records if type(r) is dict] for name in allowed}


# -- validation -----------------------------------------------------------------------


def _arrays(
    stream: StreamConfig,
    schema: pa.Schema,
    columns: Mapping[str, list[Any] | pa.ChunkedArray | None],
    n_rows: int,
    offset: int,
    problems: _Problems,
) -> list[pa.Array] | None:
    """The columns as arrays of ``schema``'s types, or ``None`` when a value is bad
    (each bad value is added to ``problems`` with its row number)."""
    kinds = dict(stream.stored_columns())
    arrays: list[pa.Array] = []
    for field in schema:
        name = field.name
        kind = "timestamp" if name == stream.timestamp else kinds.get(name, "text")
        values = columns[name]
        if values is None:
            arrays.append(pa.nulls(n_rows, type=field.type))
            continue
        array = _native(values, kind, field.type) if isinstance(values, pa.ChunkedArray) else None
        if array is None:
            listed = values.to_pylist() if isinstance(values, pa.ChunkedArray) else values
            array = _fast(listed, kind, field.type)
            if array is None:
                check = {"timestamp": _timestamp, "numerical": _number}.get(kind, _text)
                checked = _checked(listed, check, name, offset, problems)
                array = None if problems.total else pa.array(checked, type=field.type)
        if array is not None:
            arrays.append(array)
    return None if problems.total else arrays


def _native(values: pa.ChunkedArray, kind: str, target: pa.DataType) -> pa.Array | None:
    """Convert a CSV or Parquet column without leaving Arrow when its type already fits;
    ``None`` sends it through the per-value path."""
    source = values.type
    fits = (
        (kind == "timestamp" and pa.types.is_timestamp(source) and source.tz is not None)
        or (kind == "numerical" and (pa.types.is_integer(source) or pa.types.is_floating(source)))
        or (kind == "text" and (pa.types.is_string(source) or pa.types.is_large_string(source)))
        or pa.types.is_null(source)
    )
    if not fits:
        return None
    try:
        array = values.combine_chunks().cast(target)
    except (pa.ArrowException, ValueError):
        return None
    if kind == "timestamp" and array.null_count:
        return None
    if kind == "numerical" and pa_compute.all(pa_compute.is_finite(array)).as_py() is False:
        return None
    return array


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
    values: Iterable[Any],
    check: Callable[[Any], Any],
    name: str,
    offset: int,
    problems: _Problems,
) -> list[Any]:
    out: list[Any] = []
    for row, value in enumerate(values, start=offset):
        try:
            out.append(check(value))
        except ValueError as exc:
            problems.add(row, name, str(exc))
    return out


def _number(value: Any) -> float | None:
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number or null, got {value!r}")
        return value  # type: ignore[no-any-return]
    if kind is int:
        try:
            return float(value)
        except OverflowError:
            raise ValueError("expected a number within float64's range") from None
    if value is None:
        return None
    raise ValueError(f"expected a number or null, got {type(value).__name__}")


def _text(value: Any) -> str | None:
    kind = type(value)
    if value is None:
        return None
    if kind is str:
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValueError("expected text without lone surrogates (\\ud800-\\udfff)") from None
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
