"""Load a suite's dataset into cases, and fingerprint the file it came from.

Every run records the dataset's sha256, so a changed file is visible next to the scores
it produced.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.config import SuiteConfig
from monitor.errors import DatasetError


@dataclass(frozen=True, slots=True)
class Case:
    """One evaluation case: what is sent to the model and what it should answer."""

    id: str
    inputs: dict[str, Any]
    expected: Any


@dataclass(frozen=True, slots=True)
class Dataset:
    cases: tuple[Case, ...]
    sha256: str


def load_dataset(suite: SuiteConfig) -> Dataset:
    """Read ``suite.dataset`` (JSONL or CSV, by suffix) and map its fields to cases.

    Raises ``DatasetError`` naming the file and row for unreadable files, rows without the
    expected field, and duplicate case ids.
    """
    path = suite.dataset
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from None
    cases = tuple(_to_case(suite, n, row) for n, row in _rows(path, data))
    if not cases:
        raise DatasetError(f"{path}: the dataset has no rows")
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise DatasetError(f"{path}: case id {case.id!r} appears more than once")
        seen.add(case.id)
    return Dataset(cases, hashlib.sha256(data).hexdigest())


def _rows(path: Path, data: bytes) -> Iterator[tuple[int, dict[str, Any]]]:
    suffix = path.suffix.lower()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason})") from None
    if suffix in (".jsonl", ".ndjson"):
        yield from _jsonl_rows(path, text)
    elif suffix == ".csv":
        for n, row in enumerate(csv.DictReader(io.StringIO(text), strict=True), start=2):
            yield n, dict(row)
    else:
        raise DatasetError(
            f"{path}: unsupported dataset format {suffix!r}; expected .jsonl or .csv"
        )


def _jsonl_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise DatasetError(f"{path}:{n}: expected a JSON object, got {type(row).__name__}")
        yield n, row


def _to_case(suite: SuiteConfig, n: int, row: dict[str, Any]) -> Case:
    where = f"{suite.dataset}:{n}"
    if suite.expected not in row:
        raise DatasetError(f"{where}: no field {suite.expected!r} (the suite's 'expected')")
    if suite.id is None:
        case_id = str(n)
    elif suite.id in row:
        case_id = str(row[suite.id])
    else:
        raise DatasetError(f"{where}: no field {suite.id!r} (the suite's 'id')")
    if suite.inputs is None:
        inputs = {k: v for k, v in row.items() if k not in (suite.expected, suite.id)}
    else:
        missing = [f for f in suite.inputs if f not in row]
        if missing:
            raise DatasetError(f"{where}: no field {missing[0]!r} (listed in the suite's 'inputs')")
        inputs = {f: row[f] for f in suite.inputs}
    return Case(case_id, inputs, row[suite.expected])
