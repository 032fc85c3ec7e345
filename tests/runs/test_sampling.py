"""Parquet datasets, metadata fields, and seeded (stratified) sampling."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitor.config import SuiteConfig
from monitor.errors import DatasetError
from monitor.runs.datasets import load_dataset


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


def _rows(n: int) -> list[dict[str, Any]]:
    return [
        {"id": f"c{i}", "x": i, "segment": "rare" if i % 10 == 0 else "common", "label": "a"}
        for i in range(n)
    ]


def test_parquet_loads_like_jsonl_with_metadata_kept_apart(tmp_path: Path) -> None:
    rows = _rows(5)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    parquet = load_dataset(_suite(tmp_path / "d.parquet", metadata=["segment"]))
    jsonl = load_dataset(_suite(tmp_path / "d.jsonl", metadata=["segment"]))
    assert parquet.cases == jsonl.cases
    assert parquet.cases[0].inputs == {"x": 0} and parquet.cases[0].metadata == {"segment": "rare"}
    assert parquet.sha256 != jsonl.sha256


def test_missing_metadata_field_names_file_row_and_key(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": "1", "label": "a"}\n')
    with pytest.raises(DatasetError, match=r"d.jsonl:1: no field 'segment' .*'metadata'"):
        load_dataset(_suite(path, metadata=["segment"]))


def test_unreadable_parquet_is_a_dataset_error(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    path.write_bytes(b"PAR1 not really")
    with pytest.raises(DatasetError, match="not a readable Parquet file"):
        load_dataset(_suite(path))


def test_sample_is_deterministic_per_seed_and_keeps_file_order(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows(200)))
    first = load_dataset(_suite(path, sample=20, seed=3)).cases
    again = load_dataset(_suite(path, sample=20, seed=3)).cases
    other = load_dataset(_suite(path, sample=20, seed=4)).cases
    assert first == again and first != other and len(first) == 20
    order = [int(c.id[1:]) for c in first]
    assert order == sorted(order)
    assert len(load_dataset(_suite(path, sample=500)).cases) == 200


@pytest.mark.parametrize("seed", [0, 1, 2], ids=lambda s: f"seed{s}")
def test_stratified_sample_keeps_each_share(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows(200)))
    suite = _suite(path, sample=30, seed=seed, stratify="segment", metadata=["segment"])
    cases = load_dataset(suite).cases
    assert Counter(c.metadata["segment"] for c in cases) == {"common": 27, "rare": 3}
    assert cases == load_dataset(suite).cases
