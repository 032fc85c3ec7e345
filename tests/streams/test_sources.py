"""Reading files into the engine's arrays: only the monitored columns, categories shared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from monitor.errors import SourceError
from monitor.streams import sources
from tests.streams.conftest import MakeConfig

TABLE = pa.table(
    {
        "alcohol": [9.5, None, 11.0, 10.0],
        "acidity": [1.0, 2.0, 3.0, 4.0],
        "region": ["north", None, "south", "north"],
        "unused": ["a", "b", "c", "d"],
    }
)


@pytest.fixture(params=["csv", "parquet"])
def data_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / f"data.{request.param}"
    if request.param == "csv":
        pa_csv.write_csv(TABLE, path)
    else:
        pq.write_table(TABLE, path)
    return path


def test_only_the_monitored_columns_become_arrays(
    data_file: Path, make_stream_config: MakeConfig
) -> None:
    (stream,) = make_stream_config().streams
    names = [name for name, _ in stream.drift_columns()]
    table = sources.read_file(data_file, names)
    assert sorted(table.column_names) == sorted(names)  # "unused" never decoded
    columns = sources.to_columns(table, stream, str(data_file))
    np.testing.assert_array_equal(columns["alcohol"], [9.5, np.nan, 11.0, 10.0])
    assert columns["region"].dtype == object
    # CSV has no null string: "" is read, which the engine counts as missing too
    regions = [None if v == "" else v for v in columns["region"].tolist()]
    assert regions == ["north", None, "south", "north"]
    assert columns["region"][0] is columns["region"][3]  # one object per category


def test_a_missing_column_is_named_with_the_file(
    data_file: Path, make_stream_config: MakeConfig
) -> None:
    (stream,) = make_stream_config(numerical=["alcohol", "sugar"]).streams
    table = sources.read_file(data_file, [name for name, _ in stream.drift_columns()])
    with pytest.raises(SourceError, match=rf"{data_file}: the data has no column 'sugar'"):
        sources.to_columns(table, stream, str(data_file))
