"""Read a suite's dataset as a stream of cases, sample it, and fingerprint its file.

Every run records the dataset's sha256, so a changed file is visible next to the scores
it produced. Datasets are JSONL, CSV or Parquet (by suffix). A suite maps fields to the
model's inputs, the expected output(s), the case id and ``metadata`` fields, which are kept
with each case, stored with its result, and what ``slices`` and ``stratify`` group by.

``sample = N`` keeps N cases drawn with a fixed ``seed``: the same file and seed give the
same cases on every run and every machine, so a fast tier is comparable run to run.

A run never holds the dataset. ``open_dataset`` reads the file once to check it: every row
against the field mapping, duplicate case ids, the sha256, and which rows a sample keeps;
a bad file fails here, naming the row, before any case is asked. It keeps 8 bytes a row
for the duplicate check (a 64-bit hash of each id; ids whose hashes meet are compared in
full in a third read, only then) and 4 bytes a row for ``stratify``, then lets go of
them. ``DatasetStream.cases()`` reads the file a second time and yields the chosen cases
one by one, in file order. The second read checks that the file is still the one that was
checked: replaced or rewritten before it starts, or bytes that no longer match the sha256
at its end, is a ``DatasetError``.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from monitor.config import SuiteConfig
from monitor.errors import DatasetError
from monitor.records import Case
from monitor.runs.dataset_files import (
    Selection,
    Sha256,
    hash_file,
    identity,
    open_file,
    parquet_batches,
    parquet_columns,
    read_rows,
)

Positions = np.ndarray[Any, np.dtype[np.int64]]


@dataclass(frozen=True, slots=True)
class Dataset:
    """Every case of a dataset in memory: for tests and small tools. Runs stream theirs
    (``open_dataset``)."""

    cases: tuple[Case, ...]
    sha256: str


@dataclass(frozen=True, slots=True, eq=False)
class DatasetStream:
    """A checked dataset, ready to be read case by case: ``size`` cases (after
    ``sample``), from a file whose bytes hash to ``sha256``."""

    suite: SuiteConfig
    sha256: str
    size: int
    chosen: Positions | None = field(repr=False)
    identity: tuple[int, int, int, int] = field(repr=False)

    def cases(self) -> Generator[Case, None, None]:
        """The chosen cases in file order, read one at a time. Raises ``DatasetError``
        when the file is no longer the one ``open_dataset`` checked."""
        path = self.suite.dataset
        with open_file(path) as file:
            if identity(file) != self.identity:
                raise DatasetError(f"{path}: replaced or rewritten since it was checked")
            sha = hashlib.sha256()
            mapping = _Mapping(self.suite)
            for n, row in read_rows(path, file, sha, Selection(self.chosen)):
                yield mapping.case(n, row)
        if (now := sha.hexdigest()) != self.sha256:
            raise DatasetError(
                f"{path}: changed while the run was reading it "
                f"(sha256 {self.sha256[:12]}... when checked, {now[:12]}... at the end)"
            )


def open_dataset(suite: SuiteConfig) -> DatasetStream:
    """Check ``suite.dataset`` end to end and choose its cases, holding none of them.

    Raises ``DatasetError`` naming the file and row for unreadable files, rows without a
    mapped field, and duplicate case ids.
    """
    path = suite.dataset
    stratify = suite.stratify if suite.sample != "full" else None
    ids, codes, strata = array("q"), array("i"), dict[str, int]()
    count = 0
    with open_file(path) as file:
        seen = identity(file)
        sha = hashlib.sha256()
        for _, case_id, stratum in _keys(suite, path, file, sha, stratify):
            count += 1
            if suite.id is not None:  # row numbers are unique by construction
                ids.append(hash(case_id))
            if stratify is not None:
                codes.append(strata.setdefault(_text(stratum), len(strata)))
    if not count:
        raise DatasetError(f"{path}: the dataset has no rows")
    if (suspects := _repeated(ids)) and (duplicate := _first_duplicate(suite, suspects)):
        case_id, row, first = duplicate
        raise DatasetError(
            f"{path}:{row}: case id {case_id!r} appears more than once (first on row {first})"
        )
    chosen = None
    if suite.sample != "full" and suite.sample < count:
        groups = (codes, strata) if stratify is not None else None
        chosen = sample_positions(count, suite.sample, seed=suite.seed, strata=groups)
    size = count if chosen is None else len(chosen)
    return DatasetStream(suite, sha.hexdigest(), size, chosen, seen)


def dataset_problems(suites: Sequence[SuiteConfig]) -> list[str]:
    """Every suite's dataset checked as a run checks it (``open_dataset``): one problem
    per bad file, ``suites[i].dataset: `` and the very message the run would fail with.
    For ``check-config``, so that it and the first run cannot disagree."""
    problems = []
    for i, suite in enumerate(suites):
        try:
            open_dataset(suite)
        except DatasetError as exc:
            problems.append(f"suites[{i}].dataset: {exc}")
    return problems


def load_dataset(suite: SuiteConfig) -> Dataset:
    """Every case of ``suite.dataset`` (after ``sample``) in memory, with the sha256."""
    stream = open_dataset(suite)
    return Dataset(tuple(stream.cases()), stream.sha256)


def sample_positions(
    count: int, size: int, *, seed: int, strata: tuple[array[int], dict[str, int]] | None = None
) -> Positions:
    """Positions of ``size`` of ``count`` rows drawn without replacement with a generator
    seeded by ``seed``, ascending (file order). With ``strata`` (each row's stratum code
    and the code of each stratum value), each value keeps its share of the rows
    (largest-remainder rounding, ties to the value that sorts first), so a rare segment is
    not lost from the fast tier by chance."""
    rng = np.random.default_rng(seed)
    if strata is None:
        return np.sort(rng.choice(count, size=size, replace=False)).astype(np.int64)
    codes, names = strata
    column = np.frombuffer(codes, dtype=np.int32)
    groups = {key: np.flatnonzero(column == code) for key, code in names.items()}
    quotas = _allocate(size, {key: len(members) for key, members in groups.items()})
    picked = [
        groups[key][rng.choice(len(groups[key]), size=quotas[key], replace=False)]
        for key in sorted(groups)
    ]
    return np.sort(np.concatenate(picked)).astype(np.int64)


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


def _keys(
    suite: SuiteConfig, path: Path, file: IO[bytes], sha: Sha256, stratify: str | None
) -> Iterator[tuple[int, str, Any]]:
    """(row number, case id, ``stratify`` value) of every row, each row checked against
    the suite's field mapping, the whole file hashed."""
    if path.suffix.lower() == ".parquet":
        yield from _parquet_keys(suite, path, file, sha, stratify)
        return
    mapping = _Mapping(suite)
    if stratify is None:
        for n, row in read_rows(path, file, sha):
            yield n, mapping.check(n, row), None
        return
    for n, row in read_rows(path, file, sha):
        case = mapping.case(n, row)
        yield n, case.id, field_value(case, stratify)


def _parquet_keys(
    suite: SuiteConfig, path: Path, file: IO[bytes], sha: Sha256, stratify: str | None
) -> Iterator[tuple[int, str, Any]]:
    # Every row of a Parquet file has every column: the mapping is checked once, as row 1
    # would fail it. Every page is decoded (a corrupt file fails now, not mid-run), but
    # only the id and stratify columns become Python values.
    columns, rows = parquet_columns(path, file)
    if rows:
        _Mapping(suite).case(1, dict.fromkeys(columns))
    if stratify is not None and not _mapped(suite, stratify, columns):
        stratify = None  # not a field of the case: field_value gives None for every row
    n = 0
    for batch in parquet_batches(path, file):
        ids = batch.column(suite.id).to_pylist() if suite.id is not None else None
        values = batch.column(stratify).to_pylist() if stratify is not None else None
        for i in range(batch.num_rows):
            n += 1
            yield n, str(n) if ids is None else str(ids[i]), None if values is None else values[i]
    hash_file(file, sha)


def _mapped(suite: SuiteConfig, name: str, columns: list[str]) -> bool:
    """Whether field ``name`` is in a case's metadata or inputs (see ``_Mapping.case``)."""
    if name in suite.metadata:
        return True
    if suite.inputs is not None:
        return name in suite.inputs
    return name in columns and name not in (suite.expected, suite.id)


def _repeated(hashes: array[int]) -> set[int]:
    """The hashes that occur more than once. Sorts ``hashes`` in place (no copy)."""
    ordered = np.frombuffer(hashes, dtype=np.int64)
    ordered.sort()
    return set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())


def _first_duplicate(suite: SuiteConfig, suspects: set[int]) -> tuple[str, int, int] | None:
    """The first id, in file order, seen twice among ids whose hash is a suspect, with the
    rows of its second and first occurrence."""
    path, seen = suite.dataset, dict[str, int]()
    with open_file(path) as file:
        for row, case_id, _ in _keys(suite, path, file, hashlib.sha256(), None):
            if hash(case_id) in suspects:
                if case_id in seen:
                    return case_id, row, seen[case_id]
                seen[case_id] = row
    return None


class _Mapping:
    """A suite's field mapping, worked out once: what every row must have, and which of
    its fields are inputs and metadata."""

    def __init__(self, suite: SuiteConfig) -> None:
        self.suite = suite
        self._expected = suite.expected
        self._id = suite.id
        self._metadata = list(suite.metadata)
        self._inputs = None if suite.inputs is None else list(suite.inputs)
        self._required = [suite.expected, *([] if suite.id is None else [suite.id])]
        self._required += [*self._metadata, *(self._inputs or ())]
        self._skip = {suite.expected, suite.id, *suite.metadata}

    def check(self, n: int, row: dict[str, Any]) -> str:
        """Row ``n``'s case id, when the row has every mapped field (``case`` would
        accept it); ``DatasetError`` naming the row and the field it lacks."""
        for name in self._required:
            if name not in row:
                raise self._missing(n, name)
        return str(n) if self._id is None else str(row[self._id])

    def case(self, n: int, row: dict[str, Any]) -> Case:
        """Row ``n`` as a case; ``DatasetError`` naming the row and the field it lacks."""
        case_id = self.check(n, row)
        if self._inputs is None:
            skip = self._skip
            inputs = {k: v for k, v in row.items() if k not in skip}
        else:
            inputs = {f: row[f] for f in self._inputs}
        metadata = {f: row[f] for f in self._metadata}
        return Case(case_id, inputs, row[self._expected], metadata)

    def _missing(self, n: int, name: str) -> DatasetError:
        suite, where = self.suite, f"{self.suite.dataset}:{n}"
        if name == suite.expected:
            return DatasetError(f"{where}: no field {name!r} (the suite's 'expected')")
        if name == suite.id:
            return DatasetError(f"{where}: no field {name!r} (the suite's 'id')")
        key = "metadata" if name in suite.metadata else "inputs"
        return DatasetError(f"{where}: no field {name!r} (listed in the suite's {key!r})")
