"""What a Prometheus scrape costs as runs pile up: ``Store.run_summaries()`` (the grouped
query behind the run, case, token and cost metrics) and a whole ``/metrics`` answer, read
from the store (the first scrape after a write) and from the daemon's snapshot (every
scrape until the next write), beside a bare prometheus_client registry holding the same
number of series as plain gauges: the floor any exporter of that many series pays.

Seeds ``--runs`` finished runs spread over ``--pairs`` suite x model pairs (80% succeeded
with tokens and a cost, 10% failed, 10% interrupted without usage), then times each step
``--repeat`` times and prints the best. SQLite by default; ``--postgres URL`` uses a fresh
schema in that database and drops it afterwards.

    python bench/scrape.py --runs 100000 --pairs 20
    python bench/scrape.py --runs 100000 --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import random
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
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
from monitor.store.tables import runs

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


def best(step: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return min(times)


def measure(url: str, args: argparse.Namespace) -> None:
    store = Store(url)
    try:
        store.upgrade()
        seed(store, args.runs, args.pairs)
        registry = CollectorRegistry()
        registry.register(StoreCollector(store, version=__version__))
        summaries = best(store.run_summaries, args.repeat)
        scrape = best(lambda: generate_latest(registry), args.repeat)
        cached = CollectorRegistry()
        cached.register(SnapshotCollector(StoreCollector(store, version=__version__), store))
        generate_latest(cached)  # the first scrape reads the store
        snapshot = best(lambda: generate_latest(cached), args.repeat * 20)
        series = sum(
            len(f.samples) for f in text_string_to_metric_families(generate_latest(cached).decode())
        )
        bare = bare_registry(series)
        floor = best(lambda: generate_latest(bare), args.repeat * 20)
    finally:
        store.close()
    backend = url.split(":", 1)[0].split("+", 1)[0]
    print(f"{backend}: {args.runs} runs over {args.pairs} suite x model pairs, {series} series")
    print(f"  Store.run_summaries()                {summaries * 1000:8.2f} ms")
    print(f"  /metrics read from the store         {scrape * 1000:8.2f} ms")
    print(f"  /metrics from the snapshot           {snapshot * 1000:8.2f} ms")
    print(f"  bare prometheus_client, same series  {floor * 1000:8.2f} ms")
    print(f"  snapshot / bare: {snapshot / floor:.2f}x")


def bare_registry(series: int) -> CollectorRegistry:
    """``series`` samples as a bare exporter would hold them: labelled gauges in memory."""
    registry = CollectorRegistry()
    gauge = Gauge("bare_value", "A value.", ["suite", "model", "metric"], registry=registry)
    for i in range(series):
        gauge.labels(f"suite-{i % 4}", f"model-{i // 4 % 5}", f"metric-{i}").set(i)
    return registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", help="a PostgreSQL URL; a scratch schema is used")
    args = parser.parse_args()
    if not args.postgres:
        with tempfile.TemporaryDirectory() as tmp:
            measure(f"sqlite:///{tmp}/monitor.db", args)
        return
    schema = f"bench_{secrets.token_hex(4)}"
    admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in args.postgres else "?"
        measure(f"{args.postgres}{separator}options=-csearch_path%3D{schema}", args)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
