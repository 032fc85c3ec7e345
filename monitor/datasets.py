"""Load a suite's dataset into cases, sample it, and fingerprint the file it came from.

Every run records the dataset's sha256, so a changed file is visible next to the scores
it produced. Datasets are JSONL, CSV or Parquet (by suffix). A suite maps fields to the
model's inputs, the expected output(s), the case id and ``metadata`` fields, which are kept
with each case, stored with its result, and what ``slices`` and ``stratify`` group by.

``sample = N`` keeps N cases drawn with a fixed ``seed``: the same file and seed give the
same cases on every run and every machine, so a fast tier is comparable run to run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monitor.config import SuiteConfig
from monitor.errors import DatasetError


@dataclass(frozen=True, slots=True)
class Case:
    """One evaluation case: what is sent to the model, what it should answer, and the
    metadata fields (segment, language, ...) results are sliced by."""

    id: str
    inputs: dict[str, Any]
    expected: Any
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Dataset:
    cases: tuple[Case, ...]
    sha256: str


def load_dataset(suite: SuiteConfig) -> Dataset:
    """Read ``suite.dataset``, map its fields to cases and apply ``sample``.

    Raises ``DatasetError`` naming the file and row for unreadable files, rows without a
    mapped field, and duplicate case ids.
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
    if suite.sample != "full":
        cases = sample_cases(cases, suite.sample, seed=suite.seed, stratify=suite.stratify)
    return Dataset(cases, hashlib.sha256(data).hexdigest())


def sample_cases(
    cases: Sequence[Case], size: int, *, seed: int, stratify: str | None = None
) -> tuple[Case, ...]:
    """``size`` cases drawn without replacement with a generator seeded by ``seed``,
    returned in file order. With ``stratify``, each value of that field keeps its share of
    the dataset (largest-remainder rounding, ties to the value that sorts first), so a
    rare segment is not lost from the fast tier by chance."""
    if size >= len(cases):
        return tuple(cases)
    rng = np.random.default_rng(seed)
    if stratify is None:
        chosen = rng.choice(len(cases), size=size, replace=False)
        return tuple(cases[i] for i in sorted(chosen.tolist()))
    groups: dict[str, list[int]] = defaultdict(list)
    for index, case in enumerate(cases):
        groups[_text(field_value(case, stratify))].append(index)
    quotas = _allocate(size, {key: len(members) for key, members in groups.items()})
    picked: list[int] = []
    for key in sorted(groups):
        members = groups[key]
        picked += [members[i] for i in rng.choice(len(members), size=quotas[key], replace=False)]
    return tuple(cases[i] for i in sorted(picked))


def _allocate(size: int, counts: dict[str, int]) -> dict[str, int]:
    total = sum(counts.values())
    exact = {key: size * count / total for key, count in counts.items()}
    quotas = {key: int(share) for key, share in exact.items()}
    by_remainder = sorted(counts, key=lambda key: (-(exact[key] - quotas[key]), key))
    for key in by_remainder[: size - sum(quotas.values())]:
        quotas[key] += 1
    return quotas


def field_value(case: Case, name: str) -> Any:
    """The value of field ``name`` of a case: a metadata field, else an input field."""
    if name in case.metadata:
        return case.metadata[name]
    return case.inputs.get(name)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _rows(path: Path, data: bytes) -> Iterator[tuple[int, dict[str, Any]]]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        yield from _parquet_rows(path, data)
        return
    if suffix in (".jsonl", ".ndjson"):
        yield from _jsonl_rows(path, data)
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason})") from None
    if suffix == ".csv":
        for n, row in enumerate(csv.DictReader(io.StringIO(text), strict=True), start=2):
            yield n, dict(row)
    else:
        raise DatasetError(
            f"{path}: unsupported dataset format {suffix!r}; expected .jsonl, .csv or .parquet"
        )


def _parquet_rows(path: Path, data: bytes) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise DatasetError(f"{path}: not a readable Parquet file ({exc})") from None
    n = 0
    for batch in table.to_batches():
        for row in batch.to_pylist():
            n += 1
            yield n, row


def _jsonl_rows(path: Path, data: bytes) -> Iterator[tuple[int, dict[str, Any]]]:
    # Line by line over the bytes: no decoded copy of the file and no list of its lines,
    # so loading a large dataset peaks at little more than the cases it produces.
    for n, raw in enumerate(io.BytesIO(data), start=1):
        try:
            line = raw.decode("utf-8-sig" if n == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{path}:{n}: not UTF-8 text ({exc.reason})") from None
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
    for name, key in [(f, "metadata") for f in suite.metadata] + [
        (f, "inputs") for f in suite.inputs or ()
    ]:
        if name not in row:
            raise DatasetError(f"{where}: no field {name!r} (listed in the suite's {key!r})")
    if suite.inputs is None:
        skip = {suite.expected, suite.id, *suite.metadata}
        inputs = {k: v for k, v in row.items() if k not in skip}
    else:
        inputs = {f: row[f] for f in suite.inputs}
    metadata = {f: row[f] for f in suite.metadata}
    return Case(case_id, inputs, row[suite.expected], metadata)
