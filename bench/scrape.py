"""What a Prometheus scrape costs as runs pile up: ``Store.run_summaries()`` (the rollup
read behind the run, case, token and cost metrics) and a whole ``/metrics`` answer, read
from the store (the first scrape after a write) and from the daemon's snapshot (every
scrape until the next write), beside a bare prometheus_client registry holding the same
number of series as plain gauges: the floor any exporter of that many series pays.

Seeds finished runs spread over ``--pairs`` suite x model pairs (80% succeeded with tokens,
a cost and metrics, 10% failed, 10% interrupted without usage) with bare inserts, rebuilds
the per-pair rollups the store's writes keep, then times each step ``--repeat`` times and
prints the best. It does so for each of ``--runs`` (default: 100 and 100,000) in its own
store, and prints the ratio of the largest history to the smallest side by side: a scrape
that reads a bounded set of rows stays flat (target: within 2x). SQLite by default;
``--postgres URL`` uses a fresh schema in that database and drops it afterwards.

    python bench/scrape.py
    python bench/scrape.py --runs 100 100000 --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import gc
import random
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, insert, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor import __version__
from monitor.metrics.collector import StoreCollector
from monitor.metrics.snapshot import SnapshotCollector
from monitor.store import Store
from monitor.store.tables import run_metrics, runs

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rows(n: int, pairs: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(0)
    for i in range(n):
        at = T0 + timedelta(minutes=5 * (i // pairs))
        status = rng.choice(["succeeded"] * 8 + ["failed", "interrupted"])
        known = status != "interrupted"
        yield {
            "suite": f"suite-{i % pairs % 4}",
            "model": f"model-{i % pairs // 4}",
            "status": status,
            "trigger": "schedule",
            "created_at": at,
            "started_at": at,
            "finished_at": at + timedelta(seconds=30),
            "dataset_sha256": "d" * 64,
            "config_hash": "c" * 64,
            "n_cases": 500,
            "n_errors": rng.randint(0, 5),
            "prompt_tokens": 50_000 if known else None,
            "completion_tokens": 5_000 if known else None,
            "cost": 0.01 if known else None,
            "currency": "USD" if known else None,
        }


def seed(store: Store, n: int, pairs: int) -> None:
    batch: list[dict[str, Any]] = []
    with store.engine.begin() as connection:
        for row in rows(n, pairs):
            batch.append(row)
            if len(batch) == 10_000:
                connection.execute(insert(runs), batch)
                batch = []
        if batch:
            connection.execute(insert(runs), batch)
        # Three metrics per succeeded run, so the score families have rows to join.
        succeeded = connection.execute(
            text("SELECT id FROM runs WHERE status = 'succeeded'")
        ).scalars()
        metrics = [
            {"run_id": run_id, "name": name, "value": 0.8, "lower": 0.7, "upper": 0.9, "n": 500}
            for run_id in succeeded
            for name in ("accuracy", "f1", "exact_match")
        ]
        for start in range(0, len(metrics), 30_000):
            connection.execute(insert(run_metrics), metrics[start : start + 30_000])
    store.rebuild_rollups()
    if store.engine.dialect.name == "postgresql":
        # Fresh statistics, as autovacuum's ANALYZE would have after that many inserts: the
        # planner must not guess at a table it has never measured.
        with store.engine.begin() as connection:
            connection.execute(text("ANALYZE"))
    gc.collect()  # the seeding's garbage is not the scrape's to collect


def best(step: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return min(times)


Timings = dict[str, float]


def measure(url: str, n: int, args: argparse.Namespace) -> tuple[Timings, int]:
    """Best times of each step on a store holding ``n`` runs, and the series exported."""
    store = Store(url)
    try:
        store.upgrade()
        seed(store, n, args.pairs)
        registry = CollectorRegistry()
        registry.register(StoreCollector(store, version=__version__))
        timings = {"summaries": best(store.run_summaries, args.repeat)}
        timings["scrape"] = best(lambda: generate_latest(registry), args.repeat)
        cached = CollectorRegistry()
        cached.register(SnapshotCollector(StoreCollector(store, version=__version__), store))
        generate_latest(cached)  # the first scrape reads the store
        timings["snapshot"] = best(lambda: generate_latest(cached), args.repeat * 20)
        series = sum(
            len(f.samples) for f in text_string_to_metric_families(generate_latest(cached).decode())
        )
        bare = bare_registry(series)
        timings["bare"] = best(lambda: generate_latest(bare), args.repeat * 20)
    finally:
        store.close()
    return timings, series


STEPS = {
    "summaries": "Store.run_summaries()",
    "scrape": "/metrics read from the store",
    "snapshot": "/metrics from the snapshot",
    "bare": "bare prometheus_client, same series",
}


def report(backend: str, results: dict[int, tuple[Timings, int]], pairs: int) -> None:
    sizes = sorted(results)
    print(f"{backend}: {pairs} suite x model pairs, series {[results[n][1] for n in sizes]}")
    header = "".join(f"{n:>12,} runs" for n in sizes)
    print(f"  {'':38}{header}   {sizes[-1]:,} / {sizes[0]:,}")
    for step, label in STEPS.items():
        cells = "".join(f"{results[n][0][step] * 1000:14.2f} ms" for n in sizes)
        ratio = results[sizes[-1]][0][step] / results[sizes[0]][0][step]
        print(f"  {label:38}{cells}   {ratio:8.2f}x")


def bare_registry(series: int) -> CollectorRegistry:
    """``series`` samples as a bare exporter would hold them: labelled gauges in memory."""
    registry = CollectorRegistry()
    gauge = Gauge("bare_value", "A value.", ["suite", "model", "metric"], registry=registry)
    for i in range(series):
        gauge.labels(f"suite-{i % 4}", f"model-{i // 4 % 5}", f"metric-{i}").set(i)
    return registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[100, 100_000])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", help="a PostgreSQL URL; a scratch schema is used")
    args = parser.parse_args()
    results: dict[int, tuple[Timings, int]] = {}
    if not args.postgres:
        for n in args.runs:
            with tempfile.TemporaryDirectory() as tmp:
                results[n] = measure(f"sqlite:///{tmp}/monitor.db", n, args)
        report("sqlite", results, args.pairs)
        return
    for n in args.runs:
        with scratch_schema(args.postgres) as url:
            results[n] = measure(url, n, args)
    report("postgresql", results, args.pairs)


@contextmanager
def scratch_schema(base: str) -> Iterator[str]:
    """A URL of a fresh schema in the database at ``base``, dropped afterwards."""
    schema = f"bench_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in base else "?"
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
