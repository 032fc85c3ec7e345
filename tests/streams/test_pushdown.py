"""SQL push-down gives the same drift as pulling the rows, on PostgreSQL and DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, create_engine, text

from monitor.drift import ColumnSpec, DriftSettings, build_profile, compare, compare_counts
from monitor.store import Store
from monitor.streams.evaluate import StreamEvaluator
from monitor.streams.pushdown import pushdown_counts
from monitor.streams.sources import read_sql
from tests.store.conftest import _postgres_schema_url
from tests.streams.conftest import MakeConfig, stream_table

T0 = datetime(2024, 5, 1, tzinfo=UTC)
N = 4000
QUERY = "SELECT ts, x, y, c, t FROM events"
WORDS = np.array(["red", "wine", "crisp", "a", "very", "long", "tannic", "finish", "!"])
SPECS = [
    ColumnSpec("x", "numerical", ("psi", "jensenshannon", "hellinger")),
    ColumnSpec("y", "numerical"),
    ColumnSpec("c", "categorical"),
    ColumnSpec("t", "text", ("psi", "hellinger")),
]
BINNED = {"psi", "jensenshannon", "hellinger", "chi2", "linf"}


def _duckdb(tmp_path: Path) -> Iterator[str]:
    yield f"duckdb:///{tmp_path / 'warehouse.duckdb'}"


@pytest.fixture(
    params=[
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.integration),
        pytest.param("duckdb", id="duckdb"),
    ]
)
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    urls = _postgres_schema_url() if request.param == "postgresql" else _duckdb(tmp_path)
    for url in urls:
        engine = create_engine(url)
        _fill(engine)
        yield engine
        engine.dispose()


def _fill(engine: Engine) -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(0.3, 1, N)
    y = rng.exponential(2, N)
    y[::50] = np.nan  # stored as NULL
    c = rng.choice(["a", "b", "c", "d", "zz"], N, p=[0.4, 0.3, 0.2, 0.05, 0.05]).astype(object)
    c[::70] = None
    t = [" ".join(rng.choice(WORDS, rng.integers(1, 12))) for _ in range(N)]
    rows = [
        {
            "ts": T0 + timedelta(seconds=i),
            "x": float(x[i]),
            "y": None if np.isnan(y[i]) else float(y[i]),
            "c": c[i],
            "t": "" if i % 90 == 0 else t[i],
        }
        for i in range(N)
    ]
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE events"
                " (ts TIMESTAMPTZ, x DOUBLE PRECISION, y DOUBLE PRECISION, c VARCHAR, t TEXT)"
            )
        )
        connection.execute(text("INSERT INTO events VALUES (:ts, :x, :y, :c, :t)"), rows)


def _profile():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    reference = {
        "x": rng.normal(0, 1, 5000),
        "y": rng.exponential(2, 5000),
        "c": rng.choice(["a", "b", "c", "d"], 5000, p=[0.4, 0.3, 0.2, 0.1]).astype(object),
        "t": np.array([" ".join(rng.choice(WORDS, rng.integers(1, 10))) for _ in range(5000)]),
    }
    return build_profile(reference, SPECS, DriftSettings(threshold_mode="fixed"))


def test_pushdown_equals_in_memory(warehouse: Engine) -> None:
    profile = _profile()
    start, end = T0 + timedelta(seconds=500), T0 + timedelta(seconds=3500)
    counts, n_rows = pushdown_counts(
        warehouse, QUERY, profile=profile, timestamp="ts", start=start, end=end
    )
    assert n_rows == 3000
    rows = read_sql(
        warehouse, QUERY, columns=["x", "y", "c", "t"], timestamp="ts", start=start, end=end
    )
    assert rows.num_rows == 3000
    raw = {
        "x": np.array(rows.column("x").to_pylist(), dtype=float),
        "y": np.array([np.nan if v is None else v for v in rows.column("y").to_pylist()]),
        "c": np.array(rows.column("c").to_pylist(), dtype=object),
        "t": np.array(rows.column("t").to_pylist(), dtype=object),
    }
    # The database's buckets are the engine's bins.
    for name in ("x", "y"):
        values = raw[name][~np.isnan(raw[name])]
        expected = np.bincount(
            np.searchsorted(profile.bin_edges(name), values, side="right"),
            minlength=len(profile.bin_edges(name)) + 1,
        )
        assert counts[name].bins is not None
        assert counts[name].bins.tolist() == expected.tolist()
        assert counts[name].missing == int(np.isnan(raw[name]).sum())
    assert counts["c"].missing == sum(v is None for v in raw["c"])
    assert counts["c"].categories is not None and counts["c"].categories["zz"] > 0

    pushed = compare_counts(profile, counts, n_rows)
    memory = compare(profile, raw)
    assert pushed.status == memory.status == "ok"
    in_memory = {c.column: c for c in memory.columns}
    assert [c.column for c in pushed.columns] == ["x", "y", "c", "t:length"]
    for p_col in pushed.columns:
        m_col = in_memory[p_col.column]
        assert p_col.column == m_col.column
        m_results = {r.method: r for r in m_col.results if r.method in BINNED}
        p_results = {r.method: r for r in p_col.results}
        assert set(m_results) <= set(p_results)
        for method, result in m_results.items():
            assert p_results[method].statistic == pytest.approx(result.statistic, rel=1e-9)
            assert p_results[method].drifted == result.drifted
        assert p_col.quality.missing_share == pytest.approx(m_col.quality.missing_share)
        assert p_col.quality.new_categories == m_col.quality.new_categories


def test_sql_stream_reports_agree_with_and_without_pushdown(
    warehouse: Engine, make_stream_config: MakeConfig, tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    (tmp_path / "reference.csv").write_text(
        "x,y,c\n"
        + "".join(
            f"{a},{b},{k}\n"
            for a, b, k in zip(
                rng.normal(0, 1, 3000),
                rng.exponential(2, 3000),
                rng.choice(list("abcd"), 3000),
                strict=True,
            )
        )
    )
    url = warehouse.url.render_as_string(hide_password=False)
    reports = []
    for pushdown in (True, False):
        table = stream_table(
            name=f"events-{pushdown}",
            numerical=["x", "y"],
            categorical=["c"],
            record_id=None,
            methods={"numerical": ["psi", "ks"]},
            source={"kind": "sql", "url": url, "query": QUERY, "pushdown": pushdown},
            report={"html": pushdown, "sample_rows": 500},
        )
        (stream,) = make_stream_config(table).streams
        store = Store(f"sqlite:///{tmp_path / f'm{pushdown}.db'}")
        store.upgrade()
        evaluator = StreamEvaluator(stream, store, clock=lambda: T0 + timedelta(hours=1, minutes=1))
        try:
            (report,) = evaluator.run_pending()
        finally:
            evaluator.close()
            store.close()
        assert report is not None and report.n_rows == 3600 and report.status == "ok"
        reports.append(report)
    pushed, pulled = ({c["column"]: c for c in r.columns} for r in reports)
    assert set(pushed) == set(pulled) == {"x", "y", "c"}
    for name in pushed:
        assert pushed[name]["drifted"] == pulled[name]["drifted"]
        first = pushed[name]["results"][0]
        assert first == next(r for r in pulled[name]["results"] if r["method"] == first["method"])
    assert any("ks" in note for note in pushed["x"]["notes"])
    assert reports[0].has_html and not reports[1].has_html


def test_a_pushdown_window_reads_both_predictions_for_its_shadow_comparison(
    make_stream_config: MakeConfig, tmp_path: Path
) -> None:
    engine = create_engine(next(_duckdb(tmp_path)))
    _fill(engine)
    engine.dispose()
    rng = np.random.default_rng(3)
    reference = zip(rng.normal(0, 1, 500), rng.exponential(2, 500), strict=True)
    (tmp_path / "reference.csv").write_text("x,y\n" + "".join(f"{a},{b}\n" for a, b in reference))
    url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    shadows = []
    for pushdown in (True, False):
        query = "SELECT ts, x, y, y + 0.5 * x AS shadow_y FROM events"
        table = stream_table(
            name=f"events-{pushdown}",
            numerical=["x"],
            categorical=[],
            prediction="y",
            shadow_prediction="shadow_y",
            record_id=None,
            source={"kind": "sql", "url": url, "query": query, "pushdown": pushdown},
        )
        (stream,) = make_stream_config(table).streams
        store = Store(f"sqlite:///{tmp_path / f'm{pushdown}.db'}")
        store.upgrade()
        evaluator = StreamEvaluator(stream, store, clock=lambda: T0 + timedelta(hours=1, minutes=1))
        try:
            (report,) = evaluator.run_pending()
        finally:
            evaluator.close()
            store.close()
        shadows.append(report.shadow)
    pushed, pulled = shadows
    assert pushed is not None and pushed == pulled
    # y is NULL on every 50th row: those records have no pair.
    assert pushed["n_rows"] == 3600 and pushed["n_pairs"] == 3600 - 3600 // 50
    assert pushed["divergence"]["measure"] == "mean_difference"
