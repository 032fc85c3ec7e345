"""``BatchParser``: a body fed in pieces parses exactly as the whole body, hostile JSON is
refused with a 422-style ``BatchError`` (never a crash), and the Python objects held stay
bounded by a chunk of records, not by the body."""

from __future__ import annotations

import io
import json
import tracemalloc
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitor.config import StreamConfig
from monitor.errors import BatchError
from monitor.streams import batch as batch_module
from monitor.streams.batch import BatchParser, BodyFormat, parse_batch


def records(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "ts": f"2024-05-01T12:{i % 60:02d}:00Z",
            "id": f"r{i}",
            "alcohol": 10.0 + i,
            "acidity": i,
            "region": 'n, {}"[' if i % 3 else "south",  # JSON's own punctuation in text
        }
        for i in range(start, start + n)
    ]


def fed(stream: StreamConfig, body: bytes, fmt: BodyFormat, size: int) -> pa.Table:
    parser = BatchParser(stream, fmt)
    for at in range(0, len(body), size):
        parser.feed(body[at : at + size])
    return parser.finish().table


def ndjson(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_any_split_of_the_body_parses_the_same(stream: StreamConfig, fmt: BodyFormat) -> None:
    rows = records(7)
    body = json.dumps(rows, indent=1).encode() if fmt == "json" else ndjson(rows)
    whole = parse_batch(stream, body, fmt).table
    assert whole.column("region").to_pylist() == [r["region"] for r in rows]
    for size in (1, 2, 3, 7, 64):
        assert fed(stream, body, fmt, size).equals(whole), size


def test_multibyte_text_split_mid_character(stream: StreamConfig) -> None:
    rows = [r | {"region": "Zürich ~ 東京"} for r in records(3)]
    body = json.dumps(rows, ensure_ascii=False).encode()
    table = fed(stream, body, "json", 1)
    assert table.column("region").to_pylist() == ["Zürich ~ 東京"] * 3


def test_rows_past_a_chunk_keep_their_numbers(
    stream: StreamConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_module, "CHUNK_ROWS", 4)
    rows = records(10)
    assert fed(stream, json.dumps(rows).encode(), "json", 50).num_rows == 10
    rows[9]["alcohol"] = "x"
    rows[6]["acidity"] = "y"
    with pytest.raises(BatchError) as caught:
        fed(stream, json.dumps(rows).encode(), "json", 50)
    assert [(p[0], p[1]) for p in caught.value.problems] == [(6, "acidity"), (9, "alcohol")]


def test_csv_and_parquet_columns_convert_in_arrow(stream: StreamConfig) -> None:
    table = pa.Table.from_pylist(records(5))
    aware = table.column("ts").cast(pa.timestamp("s", "UTC"))
    sink = io.BytesIO()
    pq.write_table(table.set_column(0, "ts", aware), sink)
    parsed = fed(stream, sink.getvalue(), "parquet", 100)
    assert parsed.column("acidity").to_pylist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert str(parsed.column("ts").type) == "timestamp[us, tz=UTC]"
    naive = io.BytesIO()
    pq.write_table(table.set_column(0, "ts", aware.cast(pa.timestamp("s"))), naive)
    with pytest.raises(BatchError, match="offset"):
        parse_batch(stream, naive.getvalue(), "parquet")


HOSTILE = [
    pytest.param(b'[{"ts": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]", "nested too deeply",
                 id="deep"),
    pytest.param(b"[" * 5000, "nested too deeply", id="deep-arrays"),
    pytest.param(b'[{"ts": "2024-05-01T12:00:00Z", "alcohol": 1' + b"0" * 400 + b', "acidity": 1, '
                 b'"region": "a"}]', "float64's range", id="401-digit-integer"),
    pytest.param(b'[{"ts": "2024-05-01T12:00:00Z", "alcohol": 1, "acidity": 1, '
                 b'"region": "\\ud800"}]', "surrogate", id="lone-surrogate"),
    pytest.param(b'[{"ts": "2024-05-01T12:00:00Z"}', "not closed", id="unclosed"),
    pytest.param(b'[{"a": 1} {"b": 2}]', "expected ','", id="no-comma"),
    pytest.param(b"[] []", "after the array", id="trailing"),
    pytest.param(b'[{"a": "\xff"}]', "UTF-8", id="not-utf8"),
    pytest.param(b'[{"a": tru', "not valid JSON", id="truncated"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "message"), HOSTILE)
def test_hostile_json_is_a_batch_error(stream: StreamConfig, body: bytes, message: str) -> None:
    for size in (len(body), 3):
        with pytest.raises(BatchError) as caught:
            fed(stream, body, "json", size)
        assert message in caught.value.problems[0][2]


def test_python_objects_held_are_one_chunk_not_the_body(
    stream: StreamConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The body streamed in 64 KiB pieces: Python's peak (Arrow's buffers, which are
    the stored columns, are outside tracemalloc) is about one chunk of records and one
    piece, whatever the body's size; decoding the whole body into records first, as
    before, held several times the body."""
    monkeypatch.setattr(batch_module, "CHUNK_ROWS", 1000)

    def peak_of(n_rows: int) -> tuple[int, int]:
        body = json.dumps(records(n_rows)).encode()
        tracemalloc.start()
        try:
            table = fed(stream, body, "json", 1 << 16)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert table.num_rows == n_rows
        return peak, len(body)

    small, _ = peak_of(10_000)
    large, large_body = peak_of(40_000)
    assert large < small * 1.25, (small, large)  # four times the body, about the same peak
    assert large < large_body / 3, (large, large_body)


def test_a_bad_value_mid_array_is_named_by_row(stream: StreamConfig) -> None:
    """The whole-piece decode fails on it; the value-by-value decode names its row."""
    good = json.dumps(records(3))[1:-1]
    body = f'[{good}, {{"ts": tru}}, {good}]'.encode()
    for size in (len(body), 40):
        with pytest.raises(BatchError) as caught:
            fed(stream, body, "json", size)
        assert caught.value.problems[0][:2] == (3, None)


def test_a_csv_header_that_is_not_utf8_is_a_batch_error(stream: StreamConfig) -> None:
    with pytest.raises(BatchError, match="column name is not UTF-8"):
        parse_batch(stream, b"ts,\xb1lcohol\n2024-05-01T12:00:00Z,1\n", "csv")
