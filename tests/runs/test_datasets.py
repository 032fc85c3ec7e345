"""Datasets: JSONL and CSV, field mapping, hashing, and errors that name file and row."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from monitor.config import SuiteConfig
from monitor.errors import DatasetError
from monitor.runs.datasets import load_dataset


def suite(path: Path, **overrides: Any) -> SuiteConfig:
    fields = {
        "name": "s",
        "dataset": str(path),
        "task": "classification",
        "metrics": ["accuracy"],
        "models": ["m"],
        "expected": "label",
        **overrides,
    }
    return SuiteConfig.model_validate(fields)


def test_jsonl_with_ids_inputs_and_hash(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(
        '{"id": "a", "x": [1, 2], "meta": 1, "label": "p"}\n\n'
        '{"id": "b", "x": [3], "meta": 2, "label": "q"}\n'
    )
    data = load_dataset(suite(path, inputs=["x"]))
    assert [(c.id, c.inputs, c.expected) for c in data.cases] == [
        ("a", {"x": [1, 2]}, "p"),
        ("b", {"x": [3]}, "q"),
    ]
    assert data.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_csv_without_id_uses_row_numbers_and_sends_other_fields(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("x,y,label\n1,2,a\n3,4,b\n")
    data = load_dataset(suite(path, id=None))
    assert [(c.id, c.inputs, c.expected) for c in data.cases] == [
        ("2", {"x": "1", "y": "2"}, "a"),
        ("3", {"x": "3", "y": "4"}, "b"),
    ]


@pytest.mark.parametrize(
    ("name", "content", "overrides", "message"),
    [
        (
            "d.jsonl",
            '{"id": 1, "label": "a"}\n{"id": 1, "label": "b"}\n',
            {},
            "case id '1' appears more than once",
        ),
        ("d.jsonl", '{"id": 1}\n', {}, "d.jsonl:1: no field 'label'"),
        ("d.jsonl", '{"id": 1, "label": "a"}\nnot json\n', {}, "d.jsonl:2: not valid JSON"),
        ("d.jsonl", "[1, 2]\n", {}, "expected a JSON object"),
        ("d.jsonl", '{"label": "a"}\n', {}, "no field 'id'"),
        ("d.jsonl", '{"id": 1, "label": "a"}\n', {"inputs": ["x"]}, "no field 'x'"),
        ("d.jsonl", "\n", {}, "the dataset has no rows"),
        ("d.txt", "x", {}, "unsupported dataset format '.txt'"),
    ],
    ids=[
        "duplicate-id",
        "missing-expected",
        "bad-json",
        "not-object",
        "missing-id",
        "missing-input",
        "empty",
        "format",
    ],
)
def test_errors_name_file_and_row(
    tmp_path: Path, name: str, content: str, overrides: dict[str, Any], message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        load_dataset(suite(path, **overrides))
