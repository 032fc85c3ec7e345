"""``monitor drift``: a one-off comparison of two files, as a table or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from scipy import stats

from monitor.cli import cli

CONFIG = """
[[streams]]
name = "wine"
timestamp = "ts"
numerical = ["alcohol"]
categorical = ["region"]
reference = { file = "ref.parquet" }
window = { every = "1h", min_rows = 50 }
thresholds = { mode = "p-value" }
"""


@pytest.fixture
def files(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for name, shift, n in (("ref", 0.0, 2000), ("cur", 0.5, 1500), ("same", 0.0, 1500)):
        table = pa.table(
            {
                "ts": ["2024-01-01T00:00:00Z"] * n,
                "alcohol": rng.normal(10 + shift, 1, n),
                "region": rng.choice(["n", "s", "e"], n, p=[0.6, 0.2, 0.2] if shift else None),
            }
        )
        pq.write_table(table, tmp_path / f"{name}.parquet")
    (tmp_path / "config.toml").write_text(CONFIG)
    return tmp_path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_table_names_drifted_columns(files: Path) -> None:
    code, out, _ = run(
        "drift", "-c", str(files / "config.toml"), "--stream", "wine",
        "--current", str(files / "cur.parquet"),
    )  # fmt: skip
    assert code == 0
    assert "drifted columns: alcohol, region (100%); dataset drift: YES" in out
    assert out.splitlines()[0].split() == [
        "column", "kind", "method", "statistic", "p-value", "threshold", "drifted", "missing",
    ]  # fmt: skip


def test_json_agrees_with_scipy(files: Path) -> None:
    code, out, _ = run(
        "drift", "-c", str(files / "config.toml"), "--stream", "wine",
        "--current", str(files / "same.parquet"), "--reference", str(files / "ref.parquet"),
        "--json",
    )  # fmt: skip
    assert code == 0
    result = json.loads(out)
    assert result["status"] == "ok" and result["n_rows"] == 1500
    ks = next(c for c in result["columns"] if c["column"] == "alcohol")["results"][0]
    ref = pq.read_table(files / "ref.parquet").column("alcohol").to_numpy()
    cur = pq.read_table(files / "same.parquet").column("alcohol").to_numpy()
    expected = stats.ks_2samp(ref, cur)
    assert ks["method"] == "ks"
    assert ks["statistic"] == pytest.approx(expected.statistic)
    assert ks["p_value"] == pytest.approx(expected.pvalue, rel=1e-6)


def test_html_report_is_written(files: Path) -> None:
    out_path = files / "report.html"
    code, _, _ = run(
        "drift", "-c", str(files / "config.toml"), "--stream", "wine",
        "--current", str(files / "cur.parquet"), "--html", str(out_path),
    )  # fmt: skip
    assert code == 0 and "<html" in out_path.read_text().lower()


def test_unknown_stream_is_a_usage_error(files: Path) -> None:
    code, _, err = run("drift", "-c", str(files / "config.toml"), "--stream", "nope")
    assert code == 2 and "unknown stream 'nope'; defined: wine" in err


def test_check_config_summarises_streams(files: Path) -> None:
    code, out, _ = run("check-config", str(files / "config.toml"))
    assert code == 0
    assert "streams: 1 (wine)" in out
    assert "wine: 2 column(s) from ingest, windows of every 1h, judged not scheduled" in out


def test_without_current_the_latest_window_is_judged(files: Path) -> None:
    config = files / "config.toml"
    config.write_text(
        CONFIG.replace('window = { every = "1h", min_rows = 50 }', "window = { rows = 200 }")
        + f'\n[store]\ndata_dir = "{files / "data"}"\n'
    )
    from datetime import UTC, datetime

    from monitor.config import load_config
    from monitor.store import Store
    from monitor.streams.batch import encode, parse_batch

    (stream,) = load_config(config).streams
    store = Store(load_config(config).store.effective_url)
    store.upgrade()
    rows = pq.read_table(files / "cur.parquet").slice(0, 250).to_pylist()
    batch = parse_batch(stream, json.dumps(rows).encode(), "json")
    store.streams.append_batch(
        "wine",
        received_at=datetime.now(UTC),
        first_ts=batch.first_ts,
        last_ts=batch.last_ts,
        n_rows=batch.n_rows,
        payload=encode(batch.table),
    )
    store.close()
    code, out, err = run("drift", "-c", str(config), "--stream", "wine", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["n_rows"] == 200 and result["dataset_drifted"]


def test_an_unmigrated_store_says_what_to_run(files: Path) -> None:
    config = files / "config.toml"
    config.write_text(
        CONFIG.replace('window = { every = "1h", min_rows = 50 }', "window = { rows = 200 }")
        + f'\n[store]\ndata_dir = "{files / "data"}"\n'
    )
    code, _, err = run("drift", "-c", str(config), "--stream", "wine")
    assert code == 3
    assert "migrations not at head (current none" in err and "monitor db upgrade" in err
    assert "OperationalError" not in err


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_bad_current_data_is_a_usage_error_naming_file_and_row(files: Path, suffix: str) -> None:
    table = pa.table(
        {
            "ts": ["2024-01-01T00:00:00Z"] * 60,
            "alcohol": ["9.5"] * 16 + ["ten"] + ["10"] * 43,
            "region": ["n"] * 60,
        }
    )
    bad = files / f"bad.{suffix}"
    if suffix == "csv":
        import pyarrow.csv as pa_csv

        pa_csv.write_csv(table, bad)
    else:
        pq.write_table(table, bad)
    code, _, err = run(
        "drift", "-c", str(files / "config.toml"), "--stream", "wine", "--current", str(bad)
    )
    assert code == 2, err
    assert f"{bad}: column 'alcohol': expected numbers; row 17" in err
    assert "'ten'" in err
