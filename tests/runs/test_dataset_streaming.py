"""Streamed datasets give exactly what loading the whole file gave: the same cases in the
same order, the same sample, the same sha256; errors still name the row, before any case
is read; and a file changed under a run is caught.

``eager_load`` is the loader as it was before streaming (whole file in memory), kept here as
the reference."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import monitor.runs.datasets
from monitor.config import SuiteConfig
from monitor.errors import DatasetError
from monitor.records import Case
from monitor.runs.datasets import _Mapping, field_value, load_dataset, open_dataset

# -- the reference: the whole-file loader and sampler as they were ------------------------


def eager_load(suite: SuiteConfig) -> tuple[tuple[Case, ...], str]:
    data = suite.dataset.read_bytes()
    mapping = _Mapping(suite)
    cases = tuple(mapping.case(n, row) for n, row in _eager_rows(suite.dataset, data))
    if suite.sample != "full":
        cases = _eager_sample(cases, suite.sample, seed=suite.seed, stratify=suite.stratify)
    return cases, hashlib.sha256(data).hexdigest()


def _eager_rows(path: Path, data: bytes) -> Any:
    if path.suffix == ".parquet":
        n = 0
        for batch in pq.read_table(pa.BufferReader(data)).to_batches():
            for row in batch.to_pylist():
                n += 1
                yield n, row
    elif path.suffix == ".jsonl":
        for n, raw in enumerate(io.BytesIO(data), start=1):
            line = raw.decode("utf-8-sig" if n == 1 else "utf-8")
            if line.strip():
                yield n, json.loads(line)
    else:
        text = data.decode("utf-8-sig")
        for n, row in enumerate(csv.DictReader(io.StringIO(text), strict=True), start=2):
            yield n, dict(row)


def _eager_sample(
    cases: Sequence[Case], size: int, *, seed: int, stratify: str | None
) -> tuple[Case, ...]:
    if size >= len(cases):
        return tuple(cases)
    rng = np.random.default_rng(seed)
    if stratify is None:
        chosen = rng.choice(len(cases), size=size, replace=False)
        return tuple(cases[i] for i in sorted(chosen.tolist()))
    groups: dict[str, list[int]] = defaultdict(list)
    for index, case in enumerate(cases):
        value = field_value(case, stratify)
        groups[value if isinstance(value, str) else json.dumps(value, sort_keys=True)].append(index)
    total, counts = len(cases), {key: len(members) for key, members in groups.items()}
    exact = {key: size * count / total for key, count in counts.items()}
    quotas = {key: int(share) for key, share in exact.items()}
    for key in sorted(counts, key=lambda key: (-(exact[key] - quotas[key]), key))[
        : size - sum(quotas.values())
    ]:
        quotas[key] += 1
    picked: list[int] = []
    for key in sorted(groups):
        members = groups[key]
        picked += [members[i] for i in rng.choice(len(members), size=quotas[key], replace=False)]
    return tuple(cases[i] for i in sorted(picked))


# -- datasets -----------------------------------------------------------------------------

N = 3000  # crosses Parquet batches (1024 rows), row groups (700) and the 8 KiB read buffer


def _rows(n: int = N) -> list[dict[str, Any]]:
    return [
        {
            "id": f"c{i:05d}",
            "text": f'line {i}, with a comma, "quotes" and é' + ("\nmore" if i % 7 else ""),
            "x": i,
            "segment": ["common", "rare", "mid"][0 if i % 10 else 1 if i % 20 else 2],
            "tier": i % 3,
            "label": "yes" if i % 4 else "no",
        }
        for i in range(n)
    ]


def _write(path: Path, rows: list[dict[str, Any]], *, plain: bool = False) -> Path:
    """``rows`` in the format of ``path``; ``plain`` Parquet keeps text as it is (no
    compression, no dictionary), so a test can find and change it."""
    if path.suffix == ".parquet":
        options = {"compression": "none", "use_dictionary": False} if plain else {}
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=700, **options)
    elif path.suffix == ".jsonl":
        lines = [json.dumps(row, ensure_ascii=False) + "\n" for row in rows]
        lines[10:10] = ["\n", "   \n"]  # blank lines are skipped, but numbered
        path.write_bytes(b"\xef\xbb\xbf" + "".join(lines).encode())
    else:
        with path.open("w", newline="", encoding="utf-8-sig") as out:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return path


def _suite(path: Path, **extra: Any) -> SuiteConfig:
    return SuiteConfig.model_validate(
        {
            "name": "s",
            "dataset": str(path),
            "task": "classification",
            "metrics": ["accuracy"],
            "models": ["m"],
            "expected": "label",
            **extra,
        }
    )


FORMATS = ["d.jsonl", "d.csv", "d.parquet"]
MAPPINGS = {
    "full": {},
    "no-id": {"id": None},
    "inputs-metadata": {"inputs": ["text", "x"], "metadata": ["segment"]},
    "sample": {"sample": 250, "seed": 7},
    "sample-all": {"sample": N + 5},
    "stratify-metadata": {"sample": 300, "seed": 1, "stratify": "segment", "metadata": ["segment"]},
    "stratify-input": {"sample": 301, "seed": 2, "stratify": "tier"},
    "stratify-unmapped": {"sample": 40, "stratify": "tier", "inputs": ["x"]},
    "stratify-expected": {"sample": 40, "seed": 5, "stratify": "label"},
    "stratify-no-id": {"sample": 99, "seed": 3, "stratify": "segment", "id": None},
}


@pytest.mark.parametrize("mapping", list(MAPPINGS), ids=list(MAPPINGS))
@pytest.mark.parametrize("name", FORMATS, ids=lambda n: n.split(".")[1])
def test_streaming_equals_loading_the_whole_file(tmp_path: Path, name: str, mapping: str) -> None:
    suite = _suite(_write(tmp_path / name, _rows()), **MAPPINGS[mapping])
    expected_cases, expected_sha = eager_load(suite)
    stream = open_dataset(suite)
    assert stream.sha256 == expected_sha
    assert stream.size == len(expected_cases)
    assert tuple(stream.cases()) == expected_cases
    assert load_dataset(suite).cases == expected_cases


def test_a_stream_can_be_read_again(tmp_path: Path) -> None:
    stream = open_dataset(_suite(_write(tmp_path / "d.jsonl", _rows(50)), sample=10))
    assert list(stream.cases()) == list(stream.cases())


# -- errors -------------------------------------------------------------------------------


def _corrupt_jsonl(path: Path, line: int, text: bytes) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    lines[line - 1] = text
    path.write_bytes(b"".join(lines))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (b"not json\n", r"d\.jsonl:2500: not valid JSON"),
        (b'{"id": "z", "x": 1}\n', r"d\.jsonl:2500: no field 'label'"),
        (b'{"id": "z", "label": "\xff"}\n', r"d\.jsonl:2500: not UTF-8 text"),
        (b"[1]\n", r"d\.jsonl:2500: expected a JSON object, got list"),
        (
            b'{"id": "c00003", "label": "a"}\n',
            r"d\.jsonl:2500: case id 'c00003' appears more than once \(first on row 4\)",
        ),
    ],
    ids=["bad-json", "missing-field", "not-utf8", "not-object", "duplicate-id"],
)
def test_a_bad_row_late_in_the_file_fails_the_check_naming_it(
    tmp_path: Path, bad: bytes, message: str
) -> None:
    path = _write(tmp_path / "d.jsonl", _rows())
    _corrupt_jsonl(path, 2500, bad)
    with pytest.raises(DatasetError, match=message):
        open_dataset(_suite(path))


def test_csv_errors_name_the_row(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("id,label\n" + "".join(f"c{i},a\n" for i in range(2000)) + 'x,"a"b\n')
    with pytest.raises(DatasetError, match=r"d\.csv:2002: not valid CSV"):
        open_dataset(_suite(path))
    path.write_text("id,label,x\n" + "".join(f"c{i},a,1\n" for i in range(2000)))
    with pytest.raises(DatasetError, match=r"d\.csv:2: no field 'y' .*'inputs'"):
        open_dataset(_suite(path, inputs=["y"]))


def test_parquet_mapping_errors_name_row_one_and_the_field(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.parquet", _rows(20))
    with pytest.raises(DatasetError, match=r"d\.parquet:1: no field 'lang' .*'metadata'"):
        open_dataset(_suite(path, metadata=["lang"]))
    pq.write_table(pa.Table.from_pylist([{"id": "a", "label": "x"}]).slice(0, 0), path)
    with pytest.raises(DatasetError, match="the dataset has no rows"):
        open_dataset(_suite(path))


def test_duplicate_ids_are_compared_in_full_when_their_hashes_meet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every id hashes alike: the check must compare the ids themselves before refusing.
    monkeypatch.setattr(monitor.runs.datasets, "hash", lambda value: 7, raising=False)
    path = _write(tmp_path / "d.jsonl", _rows(100))
    assert open_dataset(_suite(path)).size == 100
    _corrupt_jsonl(path, 90, b'{"id": "c00041", "label": "a"}\n')
    _corrupt_jsonl(path, 95, b'{"id": "c00020", "label": "a"}\n')
    with pytest.raises(DatasetError, match="case id 'c00041' appears more than once"):
        open_dataset(_suite(path))


# -- a file that changes under a run ------------------------------------------------------


def test_a_file_replaced_after_the_check_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", _rows(100))
    stream = open_dataset(_suite(path))
    replacement = _write(tmp_path / "new.jsonl", _rows(100))
    os.replace(replacement, path)
    with pytest.raises(DatasetError, match="replaced or rewritten since it was checked"):
        next(stream.cases())


def test_a_file_replaced_during_the_stream_is_read_to_its_end(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", _rows())
    suite = _suite(path)
    expected, _ = eager_load(suite)
    cases = open_dataset(suite).cases()
    first = next(cases)
    os.replace(_write(tmp_path / "new.jsonl", _rows(10)), path)
    assert (first, *cases) == expected  # the open file is the one that was checked


@pytest.mark.parametrize("name", FORMATS, ids=lambda n: n.split(".")[1])
def test_bytes_changed_in_place_fail_the_hash_at_the_end(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path / name, _rows(), plain=True)
    stream = open_dataset(_suite(path))
    cases = stream.cases()
    first = next(cases)
    _rewrite_same_size(path)
    with pytest.raises(DatasetError, match="changed while the run was reading it"):
        for _ in cases:
            pass
    assert first.id == "c00000"


def _rewrite_same_size(path: Path) -> None:
    """Change one digit of the last row's text, keeping inode, size and modification time."""
    stat = path.stat()
    data = path.read_bytes()
    changed = data.replace(b"line 2999,", b"line 2998,")
    assert changed != data
    with path.open("r+b") as out:
        out.write(changed)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (path.stat().st_ino, path.stat().st_size) == (stat.st_ino, stat.st_size)
