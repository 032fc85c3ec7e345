"""Read a dataset file row by row, hashing its bytes on the way.

JSONL and CSV are read one line at a time from the binary file (the CSV module is fed the
decoded lines), Parquet one record batch at a time with its pages read as they are
decoded, so reading a file of any size holds about one row or one batch. Every reader
updates the given sha256 with the file's bytes: JSONL and CSV as they stream by, Parquet
(read by seeking, footer first) in one chunked pass after its rows.

A reader can skip rows it is told to skip (``Selection``): skipped JSONL lines are not
parsed as JSON, skipped Parquet rows are not turned into Python values. Row numbers in
errors are those users see: the line for JSONL, the record for CSV (the header is row 1),
the row for Parquet (from 1).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np

from monitor.errors import DatasetError

Row = dict[str, Any]


class Sha256(Protocol):
    """What the readers need of a ``hashlib.sha256()``."""

    def update(self, data: bytes, /) -> None: ...


FORMATS = (".jsonl", ".ndjson", ".csv", ".parquet")
BATCH_ROWS = 1024
"""Parquet rows turned into Python values at a time."""
_CHUNK = 1 << 20


def open_file(path: Path) -> IO[bytes]:
    """The dataset file opened for binary reading, after checking its format is known."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise DatasetError(
            f"{path}: unsupported dataset format {suffix!r}; expected .jsonl, .csv or .parquet"
        )
    try:
        return path.open("rb")
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from None


def identity(file: IO[bytes]) -> tuple[int, int, int, int]:
    """Device, inode, size and modification time: what changes when the file is replaced
    or rewritten."""
    stat = os.fstat(file.fileno())
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


class Selection:
    """Which rows to read, by position (0-based, counting only rows that are cases).
    Positions are asked in increasing order, each once; ``None`` keeps every row."""

    def __init__(self, chosen: np.ndarray[Any, np.dtype[np.int64]] | None = None) -> None:
        self._chosen = chosen
        self._next = 0

    def keep(self, position: int) -> bool:
        chosen = self._chosen
        if chosen is None:
            return True
        if self._next < len(chosen) and chosen[self._next] == position:
            self._next += 1
            return True
        return False

    def within(self, start: int, stop: int) -> np.ndarray[Any, np.dtype[np.int64]] | None:
        """The chosen positions in ``[start, stop)`` relative to ``start``; None for all."""
        chosen = self._chosen
        if chosen is None:
            return None
        low, high = np.searchsorted(chosen, [start, stop])
        return chosen[low:high] - start


def read_rows(
    path: Path, file: IO[bytes], sha: Sha256, selection: Selection | None = None
) -> Iterator[tuple[int, Row]]:
    """Every selected row of ``file`` as (row number, fields), the whole file hashed."""
    selection = selection or Selection()
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _parquet_rows(path, file, sha, selection)
    if suffix == ".csv":
        return _csv_rows(path, file, sha, selection)
    return _jsonl_rows(path, file, sha, selection)


def _lines(path: Path, file: IO[bytes], sha: Sha256) -> Iterator[tuple[int, str]]:
    for n, raw in enumerate(file, start=1):
        sha.update(raw)
        try:
            yield n, raw.decode("utf-8-sig" if n == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{path}:{n}: not UTF-8 text ({exc.reason})") from None


def _jsonl_rows(
    path: Path, file: IO[bytes], sha: Sha256, selection: Selection
) -> Iterator[tuple[int, Row]]:
    position = -1
    for n, line in _lines(path, file, sha):
        if not line.strip():
            continue
        position += 1
        if not selection.keep(position):
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
        except RecursionError:
            raise DatasetError(f"{path}:{n}: not valid JSON (nested too deeply)") from None
        except ValueError as exc:  # an integer of more than 4,300 digits
            raise DatasetError(f"{path}:{n}: not valid JSON ({exc})") from None
        if not isinstance(row, dict):
            raise DatasetError(f"{path}:{n}: expected a JSON object, got {type(row).__name__}")
        yield n, row


def _csv_rows(
    path: Path, file: IO[bytes], sha: Sha256, selection: Selection
) -> Iterator[tuple[int, Row]]:
    # The csv module reads any iterator of lines; split on b"\n" only, as newline="" would,
    # so line breaks inside quoted fields survive.
    line_number = 0

    def text() -> Iterator[str]:
        nonlocal line_number
        for number, line in _lines(path, file, sha):
            line_number = number
            yield line

    reader = csv.DictReader(text(), strict=True)
    position = -1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DatasetError(f"{path}:{line_number}: not valid CSV ({exc})") from None
        position += 1
        if selection.keep(position):
            yield position + 2, dict(row)


def _parquet_rows(
    path: Path, file: IO[bytes], sha: Sha256, selection: Selection
) -> Iterator[tuple[int, Row]]:
    import pyarrow as pa

    start = 0
    for batch in parquet_batches(path, file):
        local = selection.within(start, start + batch.num_rows)
        if local is None:
            picked, offsets = batch, range(batch.num_rows)
        else:
            picked, offsets = batch.take(pa.array(local)), local.tolist()
        for offset, row in zip(offsets, picked.to_pylist(), strict=True):
            yield start + offset + 1, row
        start += batch.num_rows
    hash_file(file, sha)


def parquet_batches(path: Path, file: IO[bytes], columns: list[str] | None = None) -> Iterator[Any]:
    """The file's record batches of ``BATCH_ROWS`` rows (only ``columns`` when given)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # pyarrow's default pre_buffer reads every row group asked for up front: for
        # iter_batches, the whole file. Unbuffered, pages are read as they are decoded.
        parquet = pq.ParquetFile(file, pre_buffer=False, buffer_size=_CHUNK)
        yield from parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise DatasetError(f"{path}: not a readable Parquet file ({exc})") from None


def parquet_columns(path: Path, file: IO[bytes]) -> tuple[list[str], int]:
    """The column names and row count from a Parquet file's footer."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        metadata = pq.ParquetFile(file).metadata
    except (pa.ArrowException, OSError) as exc:
        raise DatasetError(f"{path}: not a readable Parquet file ({exc})") from None
    return list(metadata.schema.to_arrow_schema().names), metadata.num_rows


def hash_file(file: IO[bytes], sha: Sha256) -> None:
    """Add the whole file's bytes to ``sha``, a chunk at a time."""
    file.seek(0)
    while chunk := file.read(_CHUNK):
        sha.update(chunk)
