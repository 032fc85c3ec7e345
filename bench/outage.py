"""Alert delivery through a long receiver outage: nothing lost, nothing out of order.

The scenario of ``tests/notify/test_alert_outage.py`` with a configurable outage: a
webhook receiver and a real Alertmanager go down while alerts fire, resolve and flap,
two delivery workers (replicas) keep retrying with capped back-off, and both receivers
come back. Prints what was queued, superseded, delivered and dead, the most attempts
any notification needed, how long recovery took once the receivers were back, and
whether each receiver's last word per alert is its current state, in sequence order.

    python bench/outage.py --outage 600
    python bench/outage.py --outage 600 --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.alerts.records import OutboxStatus
from tests.notify.outage import AM_BINARIES, FIRING, Outcome, run_outage
from tests.servers import find_tool


def wait_for(condition, *, timeout, what, interval=0.05):  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > end:
            raise SystemExit(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
    return result


def report(outcome: Outcome) -> bool:
    rows = outcome.outbox
    by = Counter((m.sink, m.status.value) for m in rows)
    print(f"outage: {outcome.outage_s:.1f} s; recovery after return: {outcome.recovery_s:.1f} s")
    for sink in ("hook", "am"):
        counts = ", ".join(f"{s.value} {by[(sink, s.value)]}" for s in OutboxStatus)
        print(f"  {sink}: {counts}")
    print(f"  most attempts for one notification: {max(m.attempts for m in rows)}")
    received = outcome.hook.received
    ids = [p["id"] for p in received]
    ok = len(ids) == len(set(ids))
    in_order = all(
        (s := [p["sequence"] for p in received if p["alert"]["fingerprint"] == fp]) == sorted(s)
        for fp in outcome.fingerprints.values()
    )
    latest = outcome.hook.latest()
    last_words = all(
        latest[fp]["event"] == ("firing" if model in FIRING else "resolved")
        for model, fp in outcome.fingerprints.items()
    )
    dead = by[("hook", "dead")] + by[("am", "dead")]
    am_ok = set(outcome.am_alerts) == FIRING
    print(f"  webhook: {len(received)} received, duplicates {len(ids) - len(set(ids))}")
    print(f"  webhook sequences increasing per alert: {in_order}; last word current: {last_words}")
    print(f"  alertmanager lists exactly the firing alerts {sorted(FIRING)}: {am_ok}")
    print(f"  dead letters: {dead}")
    return ok and in_order and last_words and am_ok and dead == 0


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--outage", type=float, default=600, help="seconds both are down")
    parser.add_argument("--backoff", default="200ms")
    parser.add_argument("--max-backoff", default="2s")
    parser.add_argument("--postgres", help="a PostgreSQL URL (a fresh schema is used)")
    parser.add_argument("--verbose", action="store_true", help="log every failed attempt")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING if args.verbose else logging.ERROR)
    binary = next((path for b in AM_BINARIES if (path := find_tool(b))), None)
    if binary is None:
        raise SystemExit("alertmanager is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.postgres is None:
            return await _run(f"sqlite:///{workdir / 'monitor.db'}", workdir, binary, args)
        base = make_url(args.postgres).set(drivername="postgresql+psycopg")
        schema = f"bench_{secrets.token_hex(4)}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            url = base.update_query_dict({"options": f"-csearch_path={schema}"})
            return await _run(url.render_as_string(hide_password=False), workdir, binary, args)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


async def _run(url: str, workdir: Path, binary: str, args: argparse.Namespace) -> int:
    outcome = await run_outage(
        url,
        workdir,
        binary,
        outage=args.outage,
        backoff=args.backoff,
        max_backoff=args.max_backoff,
        wait=wait_for,
        say=lambda line: print(line, flush=True),
    )
    return 0 if report(outcome) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
