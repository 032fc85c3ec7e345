"""SQL push-down vs pulling the rows: bytes moved and time, on a real PostgreSQL.

A table of ``--rows`` rows (4 numerical + 1 categorical column, one hour of timestamps) is
generated server-side with ``generate_series``. Side by side in one run, on the same
window (the whole table) and the same stored reference profile:
  push-down  ``pushdown_counts`` (GROUP BY over a bucket expression per column) and then
             ``compare_counts``;
  pull       ``read_sql`` of the window's raw rows, then ``compare``.
The client talks to PostgreSQL through a byte-counting TCP relay on loopback, so "bytes
moved" is what crossed the wire, in both directions.

    MONITOR_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        python -m bench.drift_pushdown [--rows 10000000] [--pull-rows 2000000]

Pulling ten million rows into Python needs several GB of memory, so the pull side runs on
the first ``--pull-rows`` rows and its figures are also shown scaled to the full window.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from monitor.drift import ColumnSpec, DriftSettings, build_profile, compare, compare_counts
from monitor.streams.pushdown import pushdown_counts
from monitor.streams.sources import read_sql

T0 = datetime(2024, 5, 1, tzinfo=UTC)
NUMERICAL = ["x1", "x2", "x3", "x4"]
SPECS = [ColumnSpec(n, "numerical") for n in NUMERICAL] + [ColumnSpec("c", "categorical")]


class Relay:
    """A TCP relay on loopback that counts the bytes it forwards."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.moved = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self._listener.accept()
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(1 << 16):
                sink.sendall(chunk)
                with self._lock:
                    self.moved += len(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def take(self) -> int:
        with self._lock:
            moved, self.moved = self.moved, 0
        return moved


def generate(url: str, schema: str, rows: int) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    step = 3600.0 / rows
    with engine.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        connection.execute(
            text(
                f'CREATE TABLE "{schema}".events AS SELECT '
                f"timestamptz '2024-05-01 00:00:00+00' + make_interval(secs => g * {step}) AS ts, "
                "random() + 0.05 AS x1, random() * random() AS x2, "
                "sqrt(-2 * ln(random())) * cos(2 * pi() * random()) AS x3, "
                "floor(random() * 1000)::float8 AS x4, "
                "(ARRAY['a','b','c','d','e'])[1 + floor(random() * 5)::int] AS c "
                f"FROM generate_series(0, {rows - 1}) AS g"
            )
        )
        connection.execute(text(f'ANALYZE "{schema}".events'))
    engine.dispose()


def reference_profile() -> object:
    rng = np.random.default_rng(0)
    n = 200_000
    reference = {
        "x1": rng.random(n),
        "x2": rng.random(n) * rng.random(n),
        "x3": rng.normal(0, 1, n),
        "x4": np.floor(rng.random(n) * 1000),
        "c": rng.choice(list("abcde"), n).astype(object),
    }
    return build_profile(reference, SPECS, DriftSettings(threshold_mode="fixed"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--pull-rows", type=int, default=2_000_000)
    args = parser.parse_args()
    base = make_url(os.environ["MONITOR_TEST_POSTGRES_URL"]).set(drivername="postgresql+psycopg")
    schema = f"bench_{secrets.token_hex(4)}"
    admin = base.render_as_string(hide_password=False)
    started = time.perf_counter()
    generate(admin, schema, args.rows)
    print(f"generated {args.rows:,} rows server-side in {time.perf_counter() - started:.1f} s")
    relay = Relay(base.host or "127.0.0.1", base.port or 5432)
    relayed = base.set(host="127.0.0.1", port=relay.port).update_query_dict(
        {"options": f"-csearch_path={schema}"}
    )
    engine = create_engine(relayed)
    profile = reference_profile()
    query = "SELECT ts, x1, x2, x3, x4, c FROM events"
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        relay.take()
        start, end = T0, T0 + timedelta(hours=1)
        t = time.perf_counter()
        counts, n = pushdown_counts(
            engine, query, profile=profile, timestamp="ts", start=start, end=end
        )
        pushed = compare_counts(profile, counts, n)  # type: ignore[arg-type]
        push_s, push_b = time.perf_counter() - t, relay.take()

        pull_end = T0 + timedelta(seconds=3600.0 * args.pull_rows / args.rows)
        t = time.perf_counter()
        table = read_sql(
            engine, query, columns=[*NUMERICAL, "c"], timestamp="ts", start=start, end=pull_end
        )
        current = {name: table.column(name).to_numpy(zero_copy_only=False) for name in NUMERICAL}
        current["c"] = np.array(table.column("c").to_pylist(), dtype=object)
        pulled = compare(profile, current)  # type: ignore[arg-type]
        pull_s, pull_b = time.perf_counter() - t, relay.take()
    finally:
        engine.dispose()
        drop = create_engine(admin, isolation_level="AUTOCOMMIT")
        with drop.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        drop.dispose()
    scale = args.rows / table.num_rows
    print(f"push-down: {n:,} rows judged in {push_s:.2f} s, {push_b:,} bytes moved")
    print(
        f"pull:      {table.num_rows:,} rows judged in {pull_s:.2f} s, {pull_b:,} bytes moved"
        f" (scaled to {args.rows:,} rows: {pull_s * scale:.1f} s, {pull_b * scale:,.0f} bytes)"
    )
    print(
        f"ratio pull / push-down at {args.rows:,} rows: time {pull_s * scale / push_s:.1f}x, "
        f"bytes {pull_b * scale / push_b:,.0f}x"
    )
    print(f"drift share: push-down {pushed.drift_share:.2f}, pull {pulled.drift_share:.2f}")


if __name__ == "__main__":
    main()
