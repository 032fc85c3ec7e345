"""What a Prometheus scrape costs as runs pile up: ``Store.runs.run_summaries()`` (the rollup
read behind the run, case, token and cost metrics) and a whole ``/metrics`` answer, read
from the store (the first scrape after a write) and from the daemon's snapshot (every
scrape until the next write), beside a bare prometheus_client registry holding the same
number of series as plain gauges: the floor any exporter of that many series pays.

Seeds finished runs spread over ``--pairs`` suite x model pairs (80% succeeded with tokens,
a cost and metrics, 10% failed, 10% interrupted without usage) with bare inserts into one
store per size of ``--runs`` (default: 100 and 100,000), rebuilds the per-pair rollups the
store's writes keep, then times each step ``--repeat`` times (the snapshot and bare steps
20 times more), the sizes taking turns, and prints the best of each side by side with the
ratio of the largest history to the smallest: a scrape that reads a bounded set of rows
stays flat (target: within 2x). SQLite by default; ``--postgres URL`` uses fresh schemas in
that database and drops them afterwards.

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
from contextlib import ExitStack, contextmanager
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
    store.retention.rebuild_rollups()
    if store.engine.dialect.name == "postgresql":
        # Fresh statistics, as autovacuum's ANALYZE would have after that many inserts: the
        # planner must not guess at a table it has never measured.
        with store.engine.begin() as connection:
            connection.execute(text("ANALYZE"))


def best(step: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return min(times)


Timings = dict[str, float]


class Subject:
    """One seeded store with the three registries a step scrapes."""

    def __init__(self, url: str, n: int, args: argparse.Namespace) -> None:
        self.store = Store(url)
        self.store.upgrade()
        seed(self.store, n, args.pairs)
        self.registry = CollectorRegistry()
        self.registry.register(StoreCollector(self.store, version=__version__))
        self.cached = CollectorRegistry()
        collector = StoreCollector(self.store, version=__version__)
        self.cached.register(SnapshotCollector(collector, self.store))
        text_out = generate_latest(self.cached).decode()  # the first scrape reads the store
        self.series = sum(len(f.samples) for f in text_string_to_metric_families(text_out))
        self.bare = bare_registry(self.series)

    def steps(self) -> dict[str, Callable[[], object]]:
        return {
            "summaries": self.store.runs.run_summaries,
            "scrape": lambda: generate_latest(self.registry),
            "snapshot": lambda: generate_latest(self.cached),
            "bare": lambda: generate_latest(self.bare),
        }


def measure(subjects: dict[int, Subject], repeat: int) -> dict[int, tuple[Timings, int]]:
    """Best time of each step per history size, the sizes taking turns round by round, so
    a burst of load on the machine does not fall on one size only."""
    found: dict[int, Timings] = {n: {} for n in subjects}
    for step in STEPS:
        rounds = repeat * (20 if step in ("snapshot", "bare") else 1)
        for _ in range(rounds):
            for n, subject in subjects.items():
                took = best(subject.steps()[step], 1)
                found[n][step] = min(took, found[n].get(step, took))
    return {n: (found[n], subjects[n].series) for n in subjects}


STEPS = {
    "summaries": "Store.runs.run_summaries()",
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
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--postgres", help="a PostgreSQL URL; a scratch schema is used")
    args = parser.parse_args()
    with ExitStack() as stack:
        subjects = {}
        for n in args.runs:
            if args.postgres:
                url = stack.enter_context(scratch_schema(args.postgres))
            else:
                url = f"sqlite:///{stack.enter_context(tempfile.TemporaryDirectory())}/monitor.db"
            subjects[n] = Subject(url, n, args)
            stack.callback(subjects[n].store.close)
        gc.collect()  # the seeding's garbage is not the scrapes' to collect
        report(
            "postgresql" if args.postgres else "sqlite", measure(subjects, args.repeat), args.pairs
        )


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
